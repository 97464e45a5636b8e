"""AOT compile of the real train step for a TPU topology on this CPU host (libtpu, no TPU)."""

import os

import pytest

pytest.importorskip("libtpu")

from mmada_jax import compile as compile_lib  # noqa: E402
from mmada_jax.config import apply_overrides, load_config_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "experiments", "pretrain_tiny.py")
OVR = {"mesh.data": 2, "mesh.fsdp": 1, "mesh.tensor": 2}


def test_parse_topology_names():
    t = compile_lib.parse_topology("v5p-128")
    assert (t.topology_name, t.num_chips, t.hbm_bytes) == ("v5p:4x4x4", 64, 95 * 2 ** 30)
    assert compile_lib.parse_topology("v5e-256").topology_name == "v5e:16x16"
    assert compile_lib.parse_topology("v6e-256", num_slices=2).num_chips == 512
    assert compile_lib.parse_topology("v5e:2x2").num_chips == 4
    with pytest.raises(ValueError, match="no v5p slice with 100 cores"):
        compile_lib.parse_topology("v5p-100")
    with pytest.raises(ValueError, match="expected e.g. v5p-128"):
        compile_lib.parse_topology("h100-8")


def test_tiny_train_step_compiles_for_v5e_2x2_with_pallas_attention():
    cfg = apply_overrides(load_config_file(TINY), OVR)
    logs = []
    rep = compile_lib.compile_for_topology(cfg, "v5e:2x2", attention="pallas", sample=True,
                                           log=logs.append)
    assert rep["chips"] == 4 and rep["mesh"] == {"data": 2, "fsdp": 1, "tensor": 2}
    train = rep["programs"]["train"]
    assert train["pallas_kernels"] > 0, "Pallas TPU attention missing from the compiled step"
    assert 0 < train["memory"]["total"] < rep["hbm_per_chip"]
    assert train["flops_per_chip"] and train["flops_per_chip"] > 0
    assert rep["programs"]["logits"]["pallas_kernels"] > 0
    assert rep["programs"]["sample_text"]["pallas_kernels"] > 0
    text = "\n".join(logs)
    assert "HBM per chip" in text and "wte/embedding" in text and "v5e:2x2" in text


def test_program_that_does_not_fit_is_reported(capsys):
    topo = compile_lib.parse_topology("v5e:2x2")
    small = compile_lib.dataclasses.replace(topo, hbm_bytes=1024)
    compile_lib.check_fits("train", 1024, small)
    with pytest.raises(compile_lib.DoesNotFit, match=r"train step needs 2\.00 KiB per chip, "
                       r"more than the 1\.00 KiB of a v5e chip"):
        compile_lib.check_fits("train", 2048, small)
    # the CLI turns it into exit status 2 with the message (config error -> 1)
    assert compile_lib.main(["compile", "--config", TINY, "--topology", "v5e:2x2"]) == 1
    assert "not divisible by the data-parallel size" in capsys.readouterr().err
