"""Group-relative advantages and group filtering for GRPO.

Rollouts come in groups: P prompts x G samples, laid out prompt-major ([P*G] flat, or [P, G]).
Advantage estimators are registered by name; each maps rewards [P, G] -> advantages [P, G]:

  'grpo': (r - mean_g) / (std_g + eps), population std (ddof 0), as in GRPO / Tunix.
  'rloo': r_i - mean_{j != i} r_j (leave-one-out baseline, no scaling); needs G >= 2.
  'grpo_positive' (advantages_positive.py): 'grpo' with the negative advantages zeroed.
  'grpo_negative' (advantages_negative.py): 'grpo' with the positive advantages zeroed.

Add one with `@register_advantage_estimator("name")` in a new module.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from mmada_jax.rl.registry import Registry

AdvantageFn = Callable[..., jnp.ndarray]  # (rewards [P, G], *, eps) -> [P, G]
ADVANTAGE_ESTIMATORS: Registry[AdvantageFn] = Registry("advantage estimator")


def register_advantage_estimator(name: str):
    """Decorator registering fn(rewards [P, G], *, eps) -> advantages [P, G]."""
    return ADVANTAGE_ESTIMATORS.register(name)


def get_advantage_estimator(name: str) -> AdvantageFn:
    return ADVANTAGE_ESTIMATORS.get(name)


@register_advantage_estimator("grpo")
def grpo_advantages(rewards, *, eps: float = 1e-4):
    """(r - group mean) / (group std + eps); zero for a constant group."""
    mean = rewards.mean(-1, keepdims=True)
    std = rewards.std(-1, keepdims=True)
    return (rewards - mean) / (std + eps)


@register_advantage_estimator("rloo")
def rloo_advantages(rewards, *, eps: float = 1e-4):
    """r_i minus the mean of the other G-1 rewards of its group (`eps` unused)."""
    del eps
    g = rewards.shape[-1]
    if g < 2:
        raise ValueError(f"rloo advantages need a group size >= 2, got {g}")
    total = rewards.sum(-1, keepdims=True)
    return rewards - (total - rewards) / (g - 1)


def _as_groups(rewards, group_size: int | None, fn: str):
    rewards = jnp.asarray(rewards, jnp.float32)
    if rewards.ndim == 2:
        if group_size is not None and group_size != rewards.shape[1]:
            raise ValueError(f"{fn}: rewards are [P, G]={rewards.shape} but "
                             f"group_size={group_size}")
        return rewards
    if rewards.ndim != 1 or group_size is None:
        raise ValueError(f"{fn}: rewards must be [P, G], or [P*G] with group_size; got shape "
                         f"{rewards.shape}, group_size={group_size}")
    if group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(f"{fn}: {rewards.shape[0]} rewards do not split into groups of "
                         f"{group_size}")
    return rewards.reshape(-1, group_size)


def group_advantages(rewards, group_size: int | None = None, *, eps: float = 1e-4,
                     estimator: str = "grpo"):
    """Advantages of the same shape as `rewards` ([P, G], or flat [P*G] with `group_size`)."""
    groups = _as_groups(rewards, group_size, "group_advantages")
    adv = get_advantage_estimator(estimator)(groups, eps=eps)
    return adv.reshape(jnp.shape(rewards))


def group_filter(rewards, group_size: int | None = None, *, low: float = 0.05, high: float = 0.95,
                 passed=None, pass_threshold: float | None = None, std_tol: float = 1e-6):
    """Keep mask (float32, same shape as `rewards`) over whole groups.

    A group is dropped when its rewards are constant (std <= std_tol: every advantage is zero) or
    when its pass rate is > `high` or < `low`. A sample passes where `passed` (bool, same shape)
    is True, else where reward >= `pass_threshold`; with neither, only the constant-group rule
    applies. With G = 16 and the defaults, 0/16 and 16/16 are dropped, 1/16 .. 15/16 kept.
    """
    groups = _as_groups(rewards, group_size, "group_filter")
    keep = groups.std(-1) > std_tol
    if passed is not None or pass_threshold is not None:
        if passed is not None:
            p = jnp.asarray(passed, jnp.float32).reshape(groups.shape)
        else:
            p = (groups >= pass_threshold).astype(jnp.float32)
        rate = p.mean(-1)
        keep &= (rate >= low) & (rate <= high)
    mask = jnp.broadcast_to(keep[:, None], groups.shape).astype(jnp.float32)
    return mask.reshape(jnp.shape(rewards))


# Estimators in their own modules register on import (a new estimator: a new module, imported here).
from mmada_jax.rl import advantages_positive  # noqa: E402,F401  'grpo_positive'
from mmada_jax.rl import advantages_negative  # noqa: E402,F401  'grpo_negative'
