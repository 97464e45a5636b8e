"""The sampling CLI and Python API end to end on a tiny checkpoint (random init, saved)."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from mmada_jax import sample as cli

CONFIG = os.path.join(os.path.dirname(__file__), "..", "experiments", "pretrain_tiny.py")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from mmada_jax.config import load_config_file
    from mmada_jax.training.checkpoint import Checkpointer
    from mmada_jax.training.loop import build
    from mmada_jax.training.step import init_train_state
    d = tmp_path_factory.mktemp("run")
    cfg = load_config_file(CONFIG)
    s = build(cfg, jax.devices()[:1])
    state = init_train_state(s.model, s.tx, cfg, s.mesh, jax.random.key(0), s.state_shardings)
    ck = Checkpointer(str(d / "checkpoints"), async_save=False)
    ck.save(3, state, force=True)
    ck.close()
    return str(d), cfg


def test_cli_text_t2i_mmu(workdir, tmp_path):
    wd, cfg = workdir
    assert cfg.data.max_text_len == 12
    pf = tmp_path / "p.txt"
    pf.write_text("hello\nabc\n\n")
    out = tmp_path / "out"
    common = ["--config", CONFIG, "--workdir", wd, "--out", str(out), "--param_dtype", "",
              "--batch_size", "2"]
    r = cli.main(common + ["--task", "text", "--prompt", "hi", "--prompts_file", str(pf),
                           "--gen_length", "8", "--steps", "4", "--block_length", "4"])
    assert [x["prompt"] for x in r["records"]] == ["hi", "hello", "abc"]
    assert r["sampler"].step == 3
    lines = (out / "text.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "output" in json.loads(lines[0])

    # t2i: the row is 12 + 16 + 3 = 31 <= seq_len 48
    r = cli.main(common + ["--task", "t2i", "--prompt", "a red square", "--steps", "3",
                           "--prompt", "blue", "--num_image_tokens", "16",
                           "--image_size", "64"])
    assert len(r["records"]) == 2 and np.shape(r["records"][0]["codes"]) == (4, 4)
    assert Image.open(out / "t2i_0000.png").size == (64, 64)
    assert Image.open(out / "t2i_grid.png").size == (128, 64)

    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    r = cli.main(common + ["--task", "mmu", "--image", str(img), "--prompt", "what?",
                           "--num_image_tokens", "16", "--image_size", "64",
                           "--gen_length", "4", "--steps", "2", "--block_length", "4"])
    assert r["records"][0]["image"] == str(img)


def test_cli_errors(workdir, tmp_path):
    wd, _ = workdir
    common = ["--config", CONFIG, "--workdir", wd, "--out", str(tmp_path), "--param_dtype", ""]
    with pytest.raises(ValueError, match="prompt 0 has .* tokens; the limit is 504"):
        cli.main(common + ["--task", "text", "--prompt", "x" * 600, "--gen_length", "8",
                           "--steps", "8", "--block_length", "8"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        cli.main(["--config", CONFIG, "--workdir", str(tmp_path / "none"), "--out",
                  str(tmp_path), "--task", "text", "--prompt", "a"])
