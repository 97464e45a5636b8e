"""Kill-and-resume: 10 steps straight equal 5 steps + a fresh process resuming for 5 more."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from mmada_jax.config import load_config_file, apply_overrides
from mmada_jax.training.checkpoint import Checkpointer
from mmada_jax.training.loop import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "pretrain_tiny.py")
OVERRIDES = ["--config.train.steps=10", "--config.train.log_every=1", "--config.train.ckpt_every=3"]


def _train(workdir, *extra):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-m", "mmada_jax.train", "--config", CFG, "--workdir",
                    str(workdir), *OVERRIDES, *extra], check=True, env=env, cwd=ROOT,
                   capture_output=True, text=True)


def _losses(workdir):
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    return {r["step"]: r["loss"] for r in rows}


def _final_params(workdir):
    cfg = apply_overrides(load_config_file(CFG), {"train.steps": 10})
    s = build(cfg, jax.devices()[:1])
    ck = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ck.latest_step() == 10
    state, _ = ck.restore(10, s.abstract_state)
    ck.close()
    return state


def test_kill_and_resume_is_bitwise_identical(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _train(straight)
    _train(resumed, "--stop_after=5")
    assert Checkpointer(os.path.join(resumed, "checkpoints")).latest_step() == 5
    _train(resumed)
    la, lb = _losses(straight), _losses(resumed)
    assert sorted(la) == list(range(1, 11)) and sorted(lb) == list(range(1, 11))
    assert [la[i] for i in range(1, 11)] == [lb[i] for i in range(1, 11)]
    a, b = _final_params(straight), _final_params(resumed)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
