"""Mask-ratio schedules by name: t in [0, 1] -> fraction of tokens masked.

MaskGIT/MMaDA image training and sampling use `cosine`: ratio = cos(pi t / 2). Register a new
schedule with `@register_schedule("name")` in a new file and import it from your experiment.
"""

from __future__ import annotations

import jax.numpy as jnp

_SCHEDULES = {}


def register_schedule(name: str):
    def deco(fn):
        _SCHEDULES[name] = fn
        return fn
    return deco


def get_schedule(name: str):
    if name not in _SCHEDULES:
        raise ValueError(f"unknown mask schedule {name!r}; known: {sorted(_SCHEDULES)}")
    return _SCHEDULES[name]


@register_schedule("cosine")
def cosine(t):
    return jnp.cos(jnp.pi * t / 2)


@register_schedule("linear")
def linear(t):
    return 1.0 - t


@register_schedule("square")
def square(t):
    return 1.0 - t ** 2


@register_schedule("sqrt")
def sqrt(t):
    return 1.0 - jnp.sqrt(t)


@register_schedule("full")
def full(t):
    """Every target masked (ratio 1): the target predicted from the condition alone."""
    return jnp.ones_like(t)


@register_schedule("half_full")
def half_full(t):
    """Half the rows fully masked (t < 1/2), the other half cosine over their t: a caption fully
    determines a ShapesWorld image, and rows predicted from the caption alone teach a small
    model to read it (t2i only, 800 CPU steps: object F1 of one-step samples 0.42 fully masked
    vs 0.09 cosine), while the cosine half keeps iterative decoding's partly masked inputs."""
    return jnp.where(t < 0.5, 1.0, jnp.cos(jnp.pi * (t - 0.5)))
