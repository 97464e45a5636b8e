"""Mask schedules (MaskGIT) and per-step transfer counts (LLaDA), registered by name.

A mask schedule maps the fraction of steps done, r in (0, 1], to the fraction of image tokens
still masked after that step. Tables are computed on the host in float32 (as the release does in
torch float32) and indexed inside the compiled loop. Add a schedule with
`@register_mask_schedule("name")` in a new file.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

_SCHEDULES: dict[str, Callable] = {}


def register_mask_schedule(name: str):
    """Decorator: `fn(r: float32 ndarray) -> mask ratio ndarray`."""
    def deco(fn):
        _SCHEDULES[name] = fn
        return fn
    return deco


def get_mask_schedule(name: str) -> Callable:
    """The host-side (float32 NumPy) schedule `name`. A schedule registered only for training
    (`mmada_jax.objectives.register_schedule`) is used here too, so a fork registers once."""
    if name in _SCHEDULES:
        return _SCHEDULES[name]
    from mmada_jax.objectives import schedules as train_schedules
    try:
        fn = train_schedules.get_schedule(name)
    except ValueError:
        raise ValueError(f"mask schedule {name!r} unknown; known: "
                         f"{sorted(set(_SCHEDULES) | set(train_schedules._SCHEDULES))}") from None
    return lambda r: np.asarray(fn(np.asarray(r, np.float32)), np.float32)


@register_mask_schedule("cosine")
def cosine(r):
    return np.cos(np.float32(r) * np.float32(np.pi) * np.float32(0.5)).astype(np.float32)


@register_mask_schedule("linear")
def linear(r):
    return (np.float32(1) - np.float32(r)).astype(np.float32)


@register_mask_schedule("square")
def square(r):
    return (np.float32(1) - np.float32(r) ** 2).astype(np.float32)


def mask_len_table(schedule: str, steps: int, num_tokens: int) -> np.ndarray:
    """int32 [steps]: floor(num_tokens * schedule((s + 1) / steps)) before clamping."""
    r = np.asarray([(s + 1) / steps for s in range(steps)], np.float32)
    ratio = get_mask_schedule(schedule)(r)
    return np.floor(np.float32(num_tokens) * ratio).astype(np.int32)


def annealed_temperatures(temperature: float, steps: int) -> np.ndarray:
    """float32 [steps]: the release's compounding anneal, t_s = t0 * prod_{j<=s} (1 - (j+1)/T)."""
    out, t = [], float(temperature)
    for s in range(steps):
        t = t * (1.0 - (s + 1) / steps)
        out.append(t)
    return np.asarray(out, np.float32)


def transfer_counts(num_masked, steps: int):
    """LLaDA's per-step counts: `masked // steps` each step, the remainder on the first steps.

    num_masked int [B] (numpy or jax) -> int32 [B, steps]."""
    import jax.numpy as jnp
    m = jnp.asarray(num_masked, jnp.int32)[:, None]
    base, rem = m // steps, m % steps
    return base + (jnp.arange(steps, dtype=jnp.int32)[None, :] < rem).astype(jnp.int32)
