"""Bad configs and bad checkpoints fail early with messages that name the problem."""

import os
import shutil

import jax
import pytest

from mmada_jax.config import apply_overrides, base_config, load_config_file, validate
from mmada_jax.training.checkpoint import Checkpointer, CheckpointMismatchError
from mmada_jax.training.loop import build, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny():
    c = load_config_file(os.path.join(ROOT, "experiments", "pretrain_tiny.py"))
    return apply_overrides(c, {"train.steps": 2, "train.tensorboard": False,
                               "train.progress": False})


def test_heads_must_divide_d_model():
    c = base_config()
    c.model.n_heads = 5
    with pytest.raises(ValueError, match="n_heads=5 does not divide d_model=64"):
        validate(c, 1)


def test_mesh_must_multiply_to_device_count():
    c = base_config()
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 3, 1, 1
    with pytest.raises(ValueError, match="multiplies to 3, but there are 8 devices"):
        validate(c, 8)
    c.mesh.data, c.mesh.fsdp = -1, -1
    with pytest.raises(ValueError, match="only one axis may be -1"):
        validate(c, 8)


def test_unknown_keys_are_rejected():
    with pytest.raises(KeyError, match="unknown config key 'optim.learning_rate'"):
        apply_overrides(base_config(), {"optim.learning_rate": 1.0})
    c = base_config()
    c.unlock()
    c.bogus = 1
    with pytest.raises(ValueError, match="unknown top-level keys \\['bogus'\\]"):
        validate(c, 1)


def test_batch_must_divide_data_parallel_size():
    c = base_config()
    c.tasks.lm.batch_size = 6
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 2, 2, 2
    with pytest.raises(ValueError, match="tasks.lm.batch_size=6 .* data\\*fsdp=4"):
        validate(c, 8)


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="config file not found: nope.py"):
        load_config_file("nope.py")


def test_incompatible_checkpoint_names_the_mismatch(tmp_path):
    c = _tiny()
    train(c, str(tmp_path), devices=jax.devices()[:1])
    wider = apply_overrides(c, {"model.d_model": 96, "model.mlp_dim": 160})
    with pytest.raises(CheckpointMismatchError, match=r"params/wte/embedding: shape \(.*, 64\) in "
                       r"checkpoint, expected \(.*, 96\)"):
        train(wider, str(tmp_path), devices=jax.devices()[:1])
    deeper = apply_overrides(c, {"model.scan_layers": False})
    with pytest.raises(CheckpointMismatchError, match="missing in checkpoint: .*blocks_0"):
        train(deeper, str(tmp_path), devices=jax.devices()[:1])
    bf16 = apply_overrides(c, {"model.param_dtype": "bfloat16"})
    with pytest.raises(CheckpointMismatchError, match="dtype float32 in checkpoint, expected "
                       "bfloat16"):
        train(bf16, str(tmp_path), devices=jax.devices()[:1])


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    c = _tiny()
    train(c, str(tmp_path), devices=jax.devices()[:1])
    ck = Checkpointer(os.path.join(tmp_path, "checkpoints"))
    step = ck.latest_step()
    state_dir = os.path.join(tmp_path, "checkpoints", str(step), "state")
    for name in os.listdir(state_dir):  # wipe the array data, keep the metadata
        p = os.path.join(state_dir, name)
        if name.startswith("ocdbt") or name == "d":
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    s = build(c, jax.devices()[:1])
    with pytest.raises(CheckpointMismatchError, match=f"checkpoint step {step} in .* (is unreadable|could not be "
                       "restored) \\(corrupt or incomplete\\)"):
        ck.restore(step, s.abstract_state)


def test_half_written_checkpoint_is_never_latest(tmp_path):
    c = _tiny()
    train(c, str(tmp_path), devices=jax.devices()[:1])
    ckdir = os.path.join(tmp_path, "checkpoints")
    # what an interrupted async save leaves behind: an uncommitted temporary directory
    os.makedirs(os.path.join(ckdir, "7.orbax-checkpoint-tmp-1234", "state"))
    ck = Checkpointer(ckdir)
    assert ck.latest_step() == 2
    out = train(apply_overrides(c, {"train.steps": 3}), str(tmp_path), devices=jax.devices()[:1])
    assert int(out["state"].step) == 3


def test_init_from_starts_fresh_run_from_params(tmp_path):
    c = _tiny()
    src = tmp_path / "src"
    out = train(c, str(src), devices=jax.devices()[:1])
    c2 = apply_overrides(c, {"train.init_from": str(src), "train.steps": 1})
    # stop before any update: the restored params are the source's
    from mmada_jax.training.checkpoint import restore_params
    s = build(c2, jax.devices()[:1])
    params, step = restore_params(os.path.relpath(str(src)), s.abstract_state)
    assert step == 2
    for a, b in zip(jax.tree_util.tree_leaves(params),
                    jax.tree_util.tree_leaves(out["state"].params)):
        assert (a == b).all()
    res = train(c2, str(tmp_path / "dst"), devices=jax.devices()[:1])
    assert int(res["state"].step) == 1
    with pytest.raises(FileNotFoundError, match="init_from: no checkpoint directory"):
        train(apply_overrides(c2, {"train.init_from": str(tmp_path / "nope")}),
              str(tmp_path / "dst2"), devices=jax.devices()[:1])
