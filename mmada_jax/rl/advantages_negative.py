"""'grpo_negative' advantages: GRPO's group-normalized advantages with the positive ones zeroed.

Zhu et al. 2025 ("The Surprising Effectiveness of Negative Reinforcement in LLM Reasoning") split
the policy gradient into positive-sample reinforcement (raising rewarded answers) and negative-
sample reinforcement (lowering the others) and found the negative part alone keeps the policy's
spread of answers and improves pass@k. This estimator is that negative part on GRPO's advantages;
'grpo_positive' (advantages_positive.py) is the other half.

Measured at the CPU demo's sizes (BENCHMARKS.md, "UniGRPO's advantage estimators"): from v49's
SFT checkpoint it lowered both greedy reasoning (0.812 -> 0.750 on 192 problems, +12 / -24) and
the reward on held-out prompts (28 up / 80 down); each half alone does worse than the two
together. Not a default; an option for forks that study the split.
"""

from __future__ import annotations

import jax.numpy as jnp

from mmada_jax.rl.advantages import grpo_advantages, register_advantage_estimator


@register_advantage_estimator("grpo_negative")
def grpo_negative_advantages(rewards, *, eps: float = 1e-4):
    """min(0, (r - group mean) / (group std + eps)), rewards [P, G] -> [P, G]."""
    return jnp.minimum(grpo_advantages(rewards, eps=eps), 0.0)
