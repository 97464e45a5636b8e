"""`text_answer_full`: every answer target masked at once (the ratio fixed at 1).

Paired with 'salient' rows (`config.tasks.<task>.salient_prob`, `data.rows.salient_segment`),
whose targets are only an answer's attribute words (colors, shapes, sizes), it asks for all of
them together with the rest of the answer shown: the image is the only place they can be read
from. On the 2-core CPU model, trained on such rows alone from scratch, held-out color words are
read right 0.76 of the time after 400 steps with this objective and 0.14 (chance) with
`text_answer`'s random ratio, with or without its 1/p weight (BENCHMARKS.md, "The demo").

    loss = mean_b [ sum(CE over targets of row b) / n_targets_b ]     (rows without targets: 0)
"""

from __future__ import annotations

import jax.numpy as jnp

from mmada_jax.objectives.base import Objective, masked_accuracy, register_objective


@register_objective("text_answer_full", rows="mmu")
class TextAnswerFull(Objective):
    def __init__(self, task_cfg, train_cfg):
        del task_cfg, train_cfg

    def corrupt(self, rng, rows, mask_id):
        del rng
        masked = rows["target_mask"].astype(bool)
        return dict(inputs=jnp.where(masked, mask_id, rows["tokens"]), masked=masked)

    def loss(self, scores, rows, noise):
        masked = noise["masked"]
        per_row = jnp.where(masked, scores["ce"], 0.0).sum(axis=1)
        n = masked.sum(axis=1)
        loss = (per_row / jnp.maximum(n, 1)).mean()
        return loss, dict(accuracy=masked_accuracy(scores["hit"], masked),
                          masked_tokens=masked.sum())
