"""The fine-tuning anchor of a UniGRPO stage (`config.rl.anchor_coeff`, 0: off).

InstructGPT's "PPO-ptx" for masked diffusion: each update's loss is the UniGRPO loss plus
`anchor_coeff` times the fine-tuning stage's own masked-token loss on a fresh batch of its
training rows, so the update that moves the policy towards its rewarded rollouts is also pulled
back towards the supervised data it started from:

    loss = unigrpo_loss(rollouts) + anchor_coeff * sum_t coeff_t * loss_t(anchor_batch[t])

The anchor rows are the stage config's own tasks (`config.tasks`, `config.data`: the
fine-tuning mixture the stage configs already carry), restricted to `config.rl.anchor_tasks`
(comma-separated, e.g. "lm" for the reasoning chats). Their loss is the train step's
(`training.step.make_loss_fn`) and their rows come from its batch source
(`training.loop.make_batch_source` on `anchor_config(...)`), not copies.
"""

from __future__ import annotations

import ml_collections


def anchor_task_names(rl, config) -> tuple[str, ...]:
    """The stage tasks named by `rl.anchor_tasks`, checked against `config.tasks`."""
    raw = str(rl.get("anchor_tasks", ""))
    names = tuple(t.strip() for t in raw.split(",") if t.strip())
    have = {t: int(c.batch_size) for t, c in config.tasks.items()}
    active = sorted(t for t, b in have.items() if b > 0)
    if not names:
        raise ValueError(f"config.rl.anchor_tasks={raw!r}: name at least one of the stage's "
                         f"tasks with rows ({', '.join(active)}) when rl.anchor_coeff > 0")
    bad = [t for t in names if have.get(t, 0) <= 0]
    if bad:
        raise ValueError(f"config.rl.anchor_tasks={raw!r}: {bad} not among the stage's tasks "
                         f"with batch_size > 0 ({', '.join(active)})")
    return names


def anchor_coeff(rl) -> float:
    """`rl.anchor_coeff` as a checked float (finite, >= 0)."""
    v = float(rl.get("anchor_coeff", 0.0))
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"config.rl.anchor_coeff={v}: expected a finite weight >= 0")
    return v


def anchor_config(config, names) -> ml_collections.ConfigDict:
    """A copy of the stage config whose only tasks with rows are `names` (the anchor batch's
    tasks; the others get batch_size 0 and drop out of the loss and the pipeline)."""
    c = ml_collections.ConfigDict(config.to_dict())
    for t, tc in c.tasks.items():
        if t not in names:
            tc.batch_size = 0
    if "mixture" in c.data:
        c.data.mixture = {t: m for t, m in c.data.mixture.items() if t in names}
    return c
