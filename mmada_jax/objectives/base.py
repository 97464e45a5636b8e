"""Objective interface, registry and the shared token cross-entropy."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

_OBJECTIVES: dict[str, Callable] = {}


def register_objective(name: str):
    """Decorator for a factory `(task_cfg, train_cfg) -> Objective`."""
    def deco(factory):
        _OBJECTIVES[name] = factory
        return factory
    return deco


def get_objective(name: str, task_cfg, train_cfg) -> "Objective":
    if name not in _OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(_OBJECTIVES)}")
    return _OBJECTIVES[name](task_cfg, train_cfg)


class Objective:
    """corrupt(rng, rows, mask_id) -> noise dict with 'inputs' [B, L] int32 and 'masked' [B, L]
    bool (plus whatever `loss` needs); loss(logits [B, L, V], rows, noise) -> (loss, metrics)."""

    def corrupt(self, rng, rows, mask_id: int) -> dict:
        raise NotImplementedError

    def loss(self, logits, rows, noise) -> tuple[jax.Array, dict]:
        raise NotImplementedError


def token_cross_entropy(logits, targets):
    """-log softmax(logits)[target] in float32: logits [B, L, V], targets [B, L] -> [B, L]."""
    logits = logits.astype(jnp.float32)
    lse = jax.nn.logsumexp(logits, axis=-1)
    tgt = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return lse - tgt


def masked_accuracy(logits, targets, masked):
    """Fraction of masked positions whose argmax equals the target (0 when none are masked)."""
    hit = (jnp.argmax(logits, axis=-1) == targets) & masked
    return hit.sum() / jnp.maximum(masked.sum(), 1)
