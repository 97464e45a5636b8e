"""Optimizer and learning-rate schedule from `config.optim`.

AdamW (b1 0.9, b2 0.999, eps 1e-8, weight decay 0.01 on every parameter), global-norm clipping,
linear warm-up then cosine decay to `min_lr_scale * lr` (spec section 3).
"""

from __future__ import annotations

import optax

_SCHEDULES = {}
_OPTIMIZERS = {}


def register_lr_schedule(name):
    def deco(fn):
        _SCHEDULES[name] = fn
        return fn
    return deco


def register_optimizer(name):
    def deco(fn):
        _OPTIMIZERS[name] = fn
        return fn
    return deco


@register_lr_schedule("warmup_cosine")
def warmup_cosine(o, total_steps: int):
    warm = int(o.warmup_steps)
    decay = int(o.decay_steps) or max(total_steps - warm, 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=o.lr, warmup_steps=max(warm, 0),
        decay_steps=warm + decay, end_value=o.lr * o.min_lr_scale)


@register_lr_schedule("constant")
def constant(o, total_steps: int):
    return optax.constant_schedule(o.lr)


@register_optimizer("adamw")
def adamw(o, schedule):
    return optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)


def make_lr_schedule(optim_cfg, total_steps: int):
    if optim_cfg.schedule not in _SCHEDULES:
        raise ValueError(f"config.optim.schedule={optim_cfg.schedule!r} unknown; "
                         f"known: {sorted(_SCHEDULES)}")
    return _SCHEDULES[optim_cfg.schedule](optim_cfg, total_steps)


def make_optimizer(optim_cfg, total_steps: int, clip: bool = False):
    """Returns (optax transformation, lr schedule). Global-norm clipping is applied by the train
    step (which already computes the norm); pass clip=True to include it in the chain."""
    if optim_cfg.name not in _OPTIMIZERS:
        raise ValueError(f"config.optim.name={optim_cfg.name!r} unknown; "
                         f"known: {sorted(_OPTIMIZERS)}")
    sched = make_lr_schedule(optim_cfg, total_steps)
    parts = []
    if clip and optim_cfg.clip_norm and optim_cfg.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(optim_cfg.clip_norm))
    parts.append(_OPTIMIZERS[optim_cfg.name](optim_cfg, sched))
    return optax.chain(*parts), sched
