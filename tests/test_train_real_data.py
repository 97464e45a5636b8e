"""The trainer on the real ShapesWorld pipeline: it runs, and kill-and-resume reproduces the
uninterrupted run's losses exactly (the data iterator's state travels in the checkpoint)."""

import json
import os

import jax

from mmada_jax.config import apply_overrides, load_config_file
from mmada_jax.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _losses(workdir):
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    return {r["step"]: r["loss"] for r in rows}


def test_shapesworld_kill_and_resume_matches(tmp_path):
    cfg = load_config_file(os.path.join(ROOT, "experiments", "shapesworld_tiny.py"))
    cfg = apply_overrides(cfg, {"train.steps": 6, "train.tensorboard": False,
                                "data.data_dir": str(tmp_path / "data"),
                                "data.shapesworld.num_train": 60,
                                "data.shapesworld.num_test": 10})
    dev = jax.devices()[:1]
    a, b = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train(cfg, a, devices=dev)
    out = train(cfg, b, devices=dev, stop_after=3)
    assert out["stopped_by"] == "stop_after"
    train(cfg, b, devices=dev)
    la, lb = _losses(a), _losses(b)
    assert sorted(la) == list(range(1, 7)) and sorted(lb) == list(range(1, 7))
    assert [la[i] for i in range(1, 7)] == [lb[i] for i in range(1, 7)]
    assert all(v == v for v in la.values())  # finite, not NaN
