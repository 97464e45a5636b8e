"""A lead-in phase: before a training run, `config.train.lead_in.steps` steps of the same model
under the run's config changed by `config.train.lead_in.overrides` ('key=value;...': other
tasks or batch shares, another learning rate), in WORKDIR/lead_in. The run then starts from the
lead-in's parameters (a fresh optimizer state and schedule).

What it is for: a skill that the full task mix never starts learning. The 2-core demo's model
learns to read colors off an image from 'read' rows alone at a learning rate of 5e-4 within
400 steps, and in the full mix at 2e-3 not at all (BENCHMARKS.md, "The demo").

    lead_in=ConfigDict(steps=400, overrides="tasks.t2i.batch_size=0;tasks.read.batch_size=16;"
                                             "optim.lr=5e-4;optim.schedule=constant")
"""

from __future__ import annotations

import os

from mmada_jax.config import apply_overrides, parse_overrides

SUBDIR = "lead_in"


def lead_in_config(config):
    """The lead-in phase's config, or None when `config.train.lead_in.steps` is 0. It starts
    from the run's own `train.init_from` (if any), trains `steps` steps and has no lead-in of
    its own."""
    lead = config.train.get("lead_in", None)
    steps = int(lead.get("steps", 0)) if lead is not None else 0
    if steps < 0:
        raise ValueError(f"config.train.lead_in.steps must be >= 0, got {steps}")
    if steps == 0:
        return None
    over = parse_overrides(lead.get("overrides", ""), "config.train.lead_in.overrides")
    bad = [k for k in over if k == "train.steps" or k.startswith("train.lead_in")]
    if bad:
        raise ValueError(f"config.train.lead_in.overrides: {bad[0]!r} is set by the lead-in "
                         "itself (use config.train.lead_in.steps)")
    cfg = apply_overrides(config, over | {"train.steps": steps, "train.lead_in.steps": 0,
                                          "train.lead_in.overrides": ""})
    return cfg


def lead_in_dir(workdir: str) -> str:
    return os.path.join(workdir, SUBDIR)


def after_lead_in(config, workdir: str):
    """`config` starting from the finished lead-in in `workdir` (train.init_from set to it)."""
    return apply_overrides(config, {"train.init_from": lead_in_dir(workdir)})
