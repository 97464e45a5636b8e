"""The lead-in phase (`config.train.lead_in`): its config, and a run starting from its params."""

import json
import os

import jax
import numpy as np
import pytest

from mmada_jax.config import apply_overrides, load_config_file, parse_overrides
from mmada_jax.training.checkpoint import restore_params
from mmada_jax.training.lead_in import lead_in_config
from mmada_jax.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "pretrain_tiny.py")


def _cfg(**over):
    base = {"train.log_every": 1, "train.ckpt_every": 1000, "train.tensorboard": False,
            "train.async_ckpt": False}
    return apply_overrides(load_config_file(CFG), base | over)


def test_parse_overrides_values_and_errors():
    assert parse_overrides(" optim.lr=5e-4; train.seed=4 ;x.y=true;z=abc", "w") == {
        "optim.lr": 5e-4, "train.seed": 4, "x.y": True, "z": "abc"}
    assert parse_overrides("", "w") == {}
    with pytest.raises(ValueError, match="where.*bad item 'optim.lr'"):
        parse_overrides("optim.lr;train.seed=1", "where")


def test_lead_in_config():
    assert lead_in_config(_cfg()) is None
    c = _cfg(**{"train.lead_in.steps": 3, "train.init_from": "/some/run",
                "train.lead_in.overrides": "optim.lr=0.05;tasks.lm.batch_size=0"})
    lead = lead_in_config(c)
    assert lead.train.steps == 3 and lead.optim.lr == 0.05 and lead.tasks.lm.batch_size == 0
    assert lead.train.lead_in.steps == 0 and lead.train.init_from == "/some/run"
    assert c.optim.lr != 0.05 and c.train.lead_in.steps == 3  # the run's own config unchanged
    with pytest.raises(ValueError, match="lead_in.overrides"):
        lead_in_config(_cfg(**{"train.lead_in.steps": 2, "train.lead_in.overrides": "optim.lr"}))
    with pytest.raises(ValueError, match="train.steps"):
        lead_in_config(_cfg(**{"train.lead_in.steps": 2,
                               "train.lead_in.overrides": "train.steps=5"}))
    with pytest.raises(KeyError, match="optim.lrr"):
        lead_in_config(_cfg(**{"train.lead_in.steps": 2,
                               "train.lead_in.overrides": "optim.lrr=1"}))
    with pytest.raises(ValueError, match=">= 0"):
        lead_in_config(_cfg(**{"train.lead_in.steps": -1}))


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_run_starts_from_the_lead_in(tmp_path):
    devices = jax.devices()[:1]
    # the run's own first step is skipped (0 steps): its state is where it starts
    fresh = train(_cfg(**{"train.steps": 0}), str(tmp_path / "fresh"), devices=devices)
    cfg = _cfg(**{"train.steps": 0, "train.lead_in.steps": 2,
                  "train.lead_in.overrides": "optim.lr=0.05;optim.warmup_steps=0"})
    out = train(cfg, str(tmp_path / "run"), devices=devices)
    lead_dir = tmp_path / "run" / "lead_in"
    saved = json.load(open(lead_dir / "config.json"))
    assert saved["optim"]["lr"] == 0.05 and saved["train"]["steps"] == 2
    assert json.load(open(tmp_path / "run" / "config.json"))["train"]["init_from"] == str(lead_dir)
    lead_params, step = restore_params(str(lead_dir), out["setup"].abstract_state)
    assert step == 2 and out["lead_in_seconds"] > 0
    for a, b in zip(_leaves(out["state"].params), _leaves(lead_params)):
        np.testing.assert_array_equal(a, b)
    moved = [np.abs(a - b).max() for a, b in zip(_leaves(out["state"].params),
                                                 _leaves(fresh["state"].params))]
    assert max(moved) > 1e-4  # the lead-in trained: not the fresh init
    # once the run has a checkpoint of its own, a rerun resumes it and trains no lead-in again
    lead_lines = len(open(lead_dir / "metrics.jsonl").readlines())
    cfg1 = apply_overrides(cfg, {"train.steps": 1})
    train(cfg1, str(tmp_path / "run"), devices=devices)
    train(apply_overrides(cfg, {"train.steps": 2}), str(tmp_path / "run"), devices=devices)
    assert len(open(lead_dir / "metrics.jsonl").readlines()) == lead_lines
    rows = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]
