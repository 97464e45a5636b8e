"""Image masked modelling (MaskGIT-style, as MMaDA trains t2i rows).

t ~ U(0,1) per row, ratio = schedule(t) (cosine by default), n = round(V * ratio) clamped to
[1, V] where V is the row's number of target (image) positions; n target positions chosen
uniformly at random are masked. Loss = plain mean CE over all masked positions of the task's
rows (no 1/p weighting).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmada_jax.objectives.base import Objective, masked_accuracy, register_objective
from mmada_jax.objectives.schedules import get_schedule


def image_mask(rng, target_mask, schedule):
    """Returns (masked [B, L] bool, n_masked [B] int32)."""
    k_t, k_r = jax.random.split(rng)
    b = target_mask.shape[0]
    t = jax.random.uniform(k_t, (b,), jnp.float32)
    v = target_mask.sum(axis=1)
    n = jnp.clip(jnp.round(v * schedule(t)), 1, jnp.maximum(v, 1)).astype(jnp.int32)
    n = jnp.where(v > 0, n, 0)
    scores = jnp.where(target_mask, jax.random.uniform(k_r, target_mask.shape), 2.0)
    rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
    return (rank < n[:, None]) & target_mask, n


@register_objective("image_mask", rows="t2i")
class ImageMask(Objective):
    def __init__(self, task_cfg, train_cfg):
        self.schedule = get_schedule(task_cfg.get("schedule", "cosine"))

    def corrupt(self, rng, rows, mask_id):
        masked, n = image_mask(rng, rows["target_mask"].astype(bool), self.schedule)
        return dict(inputs=jnp.where(masked, mask_id, rows["tokens"]), masked=masked)

    def loss(self, scores, rows, noise):
        m = noise["masked"]
        loss = jnp.where(m, scores["ce"], 0.0).sum() / jnp.maximum(m.sum(), 1)
        return loss, dict(accuracy=masked_accuracy(scores["hit"], m),
                          masked_tokens=m.sum())
