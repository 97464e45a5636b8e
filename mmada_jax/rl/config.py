"""UniGRPO hyper-parameters (a frozen dataclass; `to_dict`/`from_dict` for ConfigDicts).

Defaults follow the authors' later RL code (spec section 5): 16 samples per prompt, 2 masked
copies per step with t ~ U(0.1, 0.9), clip 0.2, k3 KL with beta 0.01, lr 1e-6, groups with a pass
rate > 0.95 or < 0.05 dropped. `GRPOConfig.diffu_grpo()` gives the diffu-GRPO recipe
(mu 12, group 6, beta 0.04, clip 0.5, lr 3e-6).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
    """Fields:
      group_size: G, samples per prompt.
      num_iterations: mu, fresh response maskings per step (the log-likelihood averages them).
      t_min, t_max: range the stratified mask ratios cover.
      clip_eps: PPO clip epsilon (lower side); clip_eps_high: upper side (None = clip_eps).
      beta: weight of the k3 KL to the reference policy (0 disables the reference pass).
      learning_rate: policy learning rate.
      advantage_estimator, adv_eps: registered estimator name and its std epsilon.
      policy_loss: registered policy-loss name.
      filter_low, filter_high: drop groups whose pass rate is below / above these.
      pass_threshold: reward at or above which a sample counts as a pass (2.0 = correct answer
        under the correctness reward); None keeps only the constant-group filter.
      rewards: reward name -> weight (registered in `mmada_jax.rl.rewards`); stored as a sorted
        tuple of (name, weight) pairs so the config stays hashable (usable as a jit static arg).
    """

    group_size: int = 16
    num_iterations: int = 2
    t_min: float = 0.1
    t_max: float = 0.9
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    beta: float = 0.01
    learning_rate: float = 1e-6
    advantage_estimator: str = "grpo"
    adv_eps: float = 1e-4
    policy_loss: str = "grpo_clip"
    filter_low: float = 0.05
    filter_high: float = 0.95
    pass_threshold: float | None = 2.0
    rewards: Any = (("correctness", 1.0), ("format", 1.0))

    def __post_init__(self):
        items = self.rewards.items() if hasattr(self.rewards, "items") else self.rewards
        object.__setattr__(self, "rewards", tuple(sorted((str(k), float(v)) for k, v in items)))
        checks = [
            (self.group_size >= 1, "group_size must be >= 1"),
            (self.num_iterations >= 1, "num_iterations must be >= 1"),
            (0.0 <= self.t_min < self.t_max <= 1.0, "need 0 <= t_min < t_max <= 1"),
            (self.clip_eps >= 0, "clip_eps must be >= 0"),
            (self.clip_eps_high is None or self.clip_eps_high >= 0, "clip_eps_high must be >= 0"),
            (self.beta >= 0, "beta must be >= 0"),
            (0.0 <= self.filter_low <= self.filter_high <= 1.0,
             "need 0 <= filter_low <= filter_high <= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"GRPOConfig: {msg} (got {self})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rewards"] = dict(self.rewards)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GRPOConfig":
        """From a dict or ConfigDict; unknown keys are an error naming them."""
        d = dict(d.items()) if hasattr(d, "items") else dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GRPOConfig: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def diffu_grpo(cls, **overrides) -> "GRPOConfig":
        """diffu-GRPO's recipe (mu 12, group 6, beta 0.04, clip 0.5, lr 3e-6)."""
        base = dict(group_size=6, num_iterations=12, beta=0.04, clip_eps=0.5, learning_rate=3e-6)
        base.update(overrides)
        return cls(**base)
