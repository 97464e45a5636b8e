"""Text masked diffusion (LLaDA): mask each target token with p = (1 - eps) t + eps, score CE/p.

`text_lm` (pre-training rows): loss = sum(CE / p over masked) / (B * L).
`text_answer` (chat / mmu rows, prompt never masked or scored):
    loss = sum_b [ sum(CE / p over masked in row b) / answer_length_b ] / B,
answer_length counting every target position (eos pads included), as the release does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmada_jax.objectives.base import Objective, masked_accuracy, register_objective


def text_mask(rng, target_mask, eps: float):
    """t ~ U(0,1) per row; p = (1-eps) t + eps; each target position masked with prob p.

    Returns (masked [B, L] bool, p [B] float32)."""
    k_t, k_m = jax.random.split(rng)
    b = target_mask.shape[0]
    t = jax.random.uniform(k_t, (b,), jnp.float32)
    p = (1.0 - eps) * t + eps
    u = jax.random.uniform(k_m, target_mask.shape, jnp.float32)
    return (u < p[:, None]) & target_mask, p


class _TextObjective(Objective):
    def __init__(self, eps: float):
        self.eps = eps

    def corrupt(self, rng, rows, mask_id):
        masked, p = text_mask(rng, rows["target_mask"].astype(bool), self.eps)
        inputs = jnp.where(masked, mask_id, rows["tokens"])
        return dict(inputs=inputs, masked=masked, p=p)

    def _weighted_ce(self, scores, noise):
        return jnp.where(noise["masked"], scores["ce"] / noise["p"][:, None], 0.0)

    def metrics(self, scores, noise):
        return dict(accuracy=masked_accuracy(scores["hit"], noise["masked"]),
                    masked_tokens=noise["masked"].sum())


@register_objective("text_lm", rows="lm")
class TextLM(_TextObjective):
    def __init__(self, task_cfg, train_cfg):
        super().__init__(float(train_cfg.get("text_eps", 1e-3)))

    def loss(self, scores, rows, noise):
        w = self._weighted_ce(scores, noise)
        loss = w.sum() / (w.shape[0] * w.shape[1])
        return loss, self.metrics(scores, noise)


@register_objective("text_answer", rows="mmu")
class TextAnswer(_TextObjective):
    def __init__(self, task_cfg, train_cfg):
        super().__init__(float(train_cfg.get("text_eps", 1e-3)))

    def loss(self, scores, rows, noise):
        w = self._weighted_ce(scores, noise)
        answer_len = jnp.maximum(rows["target_mask"].sum(axis=1), 1).astype(jnp.float32)
        loss = (w.sum(axis=1) / answer_len).sum() / w.shape[0]
        return loss, self.metrics(scores, noise)
