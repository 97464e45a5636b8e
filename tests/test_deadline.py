"""`train(..., deadline=t)`: a run past its time stops at the next step with a checkpoint."""

import json
import os
import time

import jax

from mmada_jax.config import apply_overrides, load_config_file
from mmada_jax.training.checkpoint import Checkpointer
from mmada_jax.training.loop import train

CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "experiments", "pretrain_tiny.py")


def test_deadline_stops_with_a_checkpoint_and_a_rerun_resumes(tmp_path):
    cfg = apply_overrides(load_config_file(CFG), {
        "train.steps": 6, "train.log_every": 1, "train.ckpt_every": 1000,
        "train.tensorboard": False, "train.async_ckpt": False})
    wd = str(tmp_path / "run")
    out = train(cfg, wd, devices=jax.devices()[:1], deadline=time.perf_counter())
    assert out["stopped_by"] == "deadline" and out["step"] == 1
    assert Checkpointer(os.path.join(wd, "checkpoints")).latest_step() == 1
    out = train(cfg, wd, devices=jax.devices()[:1], deadline=time.perf_counter() + 3600)
    assert out["stopped_by"] is None and out["step"] == 6
    steps = [json.loads(x)["step"] for x in open(os.path.join(wd, "metrics.jsonl"))]
    assert steps == [1, 2, 3, 4, 5, 6]
