"""'grpo_positive' advantages: GRPO's group-normalized advantages with the negative ones zeroed.

Only samples better than their group's mean are reinforced; worse ones get no push-down. For a
weak policy whose groups are mostly wrong answers, the plain estimator spends most of each update
lowering the likelihood of those (measured at the CPU demo's sizes: after one step the wrong
answers' masked log-likelihood fell by 0.1 nats while the right ones rose by 0.01); this variant
keeps only the signal that moves the policy toward rewarded answers.

Measured at the CPU demo's sizes (BENCHMARKS.md): worse than 'grpo' there, because that model's
rewarded answers are mostly guesses (held-out reasoning 0.26 -> 0.05-0.18, 'grpo' 0.18-0.24).
Not a default; an option for policies whose rewarded samples are sound.
"""

from __future__ import annotations

import jax.numpy as jnp

from mmada_jax.rl.advantages import grpo_advantages, register_advantage_estimator


@register_advantage_estimator("grpo_positive")
def grpo_positive_advantages(rewards, *, eps: float = 1e-4):
    """max(0, (r - group mean) / (group std + eps)), rewards [P, G] -> [P, G]."""
    return jnp.maximum(grpo_advantages(rewards, eps=eps), 0.0)
