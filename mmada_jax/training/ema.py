"""Exponential moving average (EMA) of the parameters, kept in the train state.

With `config.train.ema_decay` = d > 0 the train state carries `ema_params`, updated after every
applied optimizer step (a skipped non-finite step leaves it unchanged):

    d_t = min(d, (1 + t) / (10 + t))          # t: the step just taken, 0-based
    ema <- ema + (1 - d_t) * (params - ema)

The cap on d_t lets the average follow the early, fast-moving parameters instead of remembering
their initialization for ~1/(1-d) steps. `ema_params` is sharded like `params` (same logical
axes), saved in every checkpoint and restored on resume; `training.checkpoint.restore_params`
returns it in place of `params` by default (evaluation, the next stage's `init_from`, export),
see its `weights` argument. d = 0 (the default) keeps no average: the state and the
checkpoints are exactly those of a run without this feature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ema_decay_at(step, decay: float):
    """The decay used for the update after 0-based step `step` (a scalar array or int)."""
    t = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))


def update_ema(ema, params, decay):
    """ema + (1 - decay) * (params - ema), leaf by leaf, computed in float32 and stored in each
    average leaf's dtype."""
    def one(e, p):
        e32 = e.astype(jnp.float32)
        return (e32 + (1.0 - decay) * (p.astype(jnp.float32) - e32)).astype(e.dtype)
    return jax.tree_util.tree_map(one, ema, params)


def check_ema_decay(decay) -> float:
    d = float(decay or 0.0)
    if not 0.0 <= d < 1.0:
        raise ValueError(f"config.train.ema_decay={decay!r}: must be in [0, 1) "
                         "(0 keeps no average)")
    return d
