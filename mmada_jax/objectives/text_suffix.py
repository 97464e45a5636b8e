"""`text_answer_suffix`: chat answers trained with a visible prefix, as they are decoded.

Plain `text_answer` masks every answer token independently with one ratio, so a late token (a
final count, "there are 2") is almost always learned with part of its worked listing masked:
the model learns to take it from the image instead of from the listing it wrote. Semi-
autoregressive decoding, though, writes the listing first and the answer after it. Here, with
probability `suffix_prob` per answer segment, a cut is drawn uniformly over the answer and only
tokens after it may be masked (each with the row's ratio p, as in `text_answer`); the prefix is
visible. For those segments the loss is the masked-diffusion bound on log p(suffix | prompt,
prefix), so the usual CE / p weighting stays the right one. Packed rows (`segment_ids`) get one
cut per segment.

    config.tasks.mmu.objective = "text_answer_suffix"
    config.tasks.mmu.suffix_prob = 0.5        # share of segments with a visible prefix
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmada_jax.objectives.base import register_objective
from mmada_jax.objectives.text import TextAnswer


def answer_fraction(target_mask, segment_ids=None):
    """Where each target token sits in its segment's answer: (rank - 1) / n_targets in [0, 1)
    for targets (0 elsewhere). target_mask [B, L] bool; segment_ids [B, L] int with contiguous
    segments (None: one segment per row)."""
    tm = target_mask.astype(jnp.int32)
    b, l = tm.shape
    seg = jnp.zeros((b, l), jnp.int32) if segment_ids is None else segment_ids
    cum = jnp.cumsum(tm, axis=1)
    first = jnp.concatenate([jnp.ones((b, 1), bool), seg[:, 1:] != seg[:, :-1]], axis=1)
    last = jnp.concatenate([seg[:, 1:] != seg[:, :-1], jnp.ones((b, 1), bool)], axis=1)
    # targets before the segment (cum is non-decreasing, so a running max carries it forward)
    before = jax.lax.cummax(jnp.where(first, cum - tm, 0), axis=1)
    # targets up to the segment's end (the nearest segment end to the right)
    big = jnp.iinfo(jnp.int32).max
    upto = jax.lax.cummin(jnp.where(last, cum, big), axis=1, reverse=True)
    n = jnp.maximum(upto - before, 1)
    return jnp.where(target_mask, (cum - before - 1) / n, 0.0).astype(jnp.float32)


def suffix_mask_from_draws(target_mask, segment_ids, p, u, cut_table, use_table):
    """The mask given its random draws: target & (u < p) & (not use or fraction >= cut), with
    the cut and the use flag looked up per segment. p [B]; u [B, L]; cut_table, use_table
    [B, L] indexed by segment id (ids are clipped into [0, L))."""
    l = target_mask.shape[1]
    seg = (jnp.zeros_like(target_mask, jnp.int32) if segment_ids is None
           else jnp.clip(segment_ids, 0, l - 1))
    cut = jnp.take_along_axis(cut_table, seg, axis=1)
    use = jnp.take_along_axis(use_table, seg, axis=1)
    frac = answer_fraction(target_mask, segment_ids)
    return target_mask & (u < p[:, None]) & (~use | (frac >= cut))


def suffix_text_mask(rng, target_mask, segment_ids, eps: float, suffix_prob: float):
    """(masked [B, L] bool, p [B]): t ~ U(0, 1), p = (1 - eps) t + eps per row."""
    k_t, k_m, k_c, k_s = jax.random.split(rng, 4)
    b, l = target_mask.shape
    t = jax.random.uniform(k_t, (b,), jnp.float32)
    p = (1.0 - eps) * t + eps
    u = jax.random.uniform(k_m, (b, l), jnp.float32)
    cut = jax.random.uniform(k_c, (b, l), jnp.float32)
    use = jax.random.uniform(k_s, (b, l), jnp.float32) < suffix_prob
    return suffix_mask_from_draws(target_mask, segment_ids, p, u, cut, use), p


@register_objective("text_answer_suffix", rows="mmu")
class TextAnswerSuffix(TextAnswer):
    """`text_answer`'s loss on `suffix_text_mask` corruption."""

    def __init__(self, task_cfg, train_cfg):
        super().__init__(task_cfg, train_cfg)
        self.suffix_prob = float(task_cfg.get("suffix_prob", 0.5))
        if not 0.0 <= self.suffix_prob <= 1.0:
            raise ValueError(f"text_answer_suffix: suffix_prob {self.suffix_prob} not in [0, 1]")

    def corrupt(self, rng, rows, mask_id):
        masked, p = suffix_text_mask(rng, rows["target_mask"].astype(bool),
                                     rows.get("segment_ids"), self.eps, self.suffix_prob)
        return dict(inputs=jnp.where(masked, mask_id, rows["tokens"]), masked=masked, p=p)
