"""UniGRPO's loss: a clipped, sequence-level GRPO objective plus beta * KL to a reference policy.

All inputs are per sequence ([B]): `logp_*` are the mu-averaged masked log-likelihoods of
`logprob.sequence_logprob`, computed on the same masks for the new (trained), old (rollout) and
reference policies; `weights` is the group-filter keep mask (or any non-negative weights).

  r      = exp(logp_new - logp_old)
  policy = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)            ('grpo_clip')
  kl     = exp(logp_ref - logp_new) - (logp_ref - logp_new) - 1       (k3 estimator, >= 0)
  loss   = sum_b w_b (policy_b + beta kl_b) / max(sum_b w_b, 1e-8)

Policy losses are registered by name: fn(logp_new, logp_old, advantages, *, clip_eps,
clip_eps_high) -> (per-sequence loss [B], clipped bool [B]). Add one with
`@register_policy_loss("name")`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mmada_jax.rl.registry import Registry

PolicyLossFn = Callable[..., tuple[jax.Array, jax.Array]]
POLICY_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")


def register_policy_loss(name: str):
    """Decorator registering a per-sequence policy loss (see module docstring)."""
    return POLICY_LOSSES.register(name)


def get_policy_loss(name: str) -> PolicyLossFn:
    return POLICY_LOSSES.get(name)


@register_policy_loss("grpo_clip")
def grpo_clip_loss(logp_new, logp_old, advantages, *, clip_eps: float,
                   clip_eps_high: float | None = None):
    """PPO/GRPO clipped surrogate, negated. `clipped` marks sequences whose gradient is cut."""
    hi = clip_eps if clip_eps_high is None else clip_eps_high
    ratio = jnp.exp(logp_new - logp_old)
    unclipped = ratio * advantages
    clipped_obj = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + hi) * advantages
    clipped = clipped_obj < unclipped
    return -jnp.minimum(unclipped, clipped_obj), clipped


@register_policy_loss("pg")
def importance_pg_loss(logp_new, logp_old, advantages, *, clip_eps: float = 0.0,
                       clip_eps_high: float | None = None):
    """Unclipped importance-weighted policy gradient: -r A (`clip_eps` unused)."""
    del clip_eps, clip_eps_high
    ratio = jnp.exp(logp_new - logp_old)
    return -ratio * advantages, jnp.zeros(ratio.shape, bool)


def k3_kl(logp_new, logp_ref):
    """Schulman's k3 estimator of KL(new || ref): exp(ref - new) - (ref - new) - 1 (>= 0)."""
    d = logp_ref - logp_new
    return jnp.exp(d) - d - 1.0


def unigrpo_loss(logp_new, logp_old, logp_ref, advantages, weights, *, clip_eps: float = 0.2,
                 beta: float = 0.01, clip_eps_high: float | None = None,
                 policy_loss: str = "grpo_clip"):
    """Scalar UniGRPO loss and metrics, all inputs float [B].

    `logp_old` and `logp_ref` are treated as constants (stop_gradient). `logp_ref` may be None
    when beta == 0. Returns (loss, metrics) with metrics: loss, policy_loss, kl, clip_fraction,
    ratio_mean, ratio_max, advantage_mean, kept (sum of weights); means are weighted by `weights`.
    """
    logp_new = jnp.asarray(logp_new, jnp.float32)
    if logp_new.ndim != 1:
        raise ValueError(f"unigrpo_loss: logp_new must be [B], got {logp_new.shape}")
    named = dict(logp_old=logp_old, advantages=advantages, weights=weights)
    if logp_ref is not None:
        named["logp_ref"] = logp_ref
    for k, v in named.items():
        if jnp.shape(v) != logp_new.shape:
            raise ValueError(f"unigrpo_loss: {k} has shape {jnp.shape(v)}, expected "
                             f"{logp_new.shape}")
    logp_old = jax.lax.stop_gradient(jnp.asarray(logp_old, jnp.float32))
    adv = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    w = jax.lax.stop_gradient(jnp.asarray(weights, jnp.float32))
    denom = jnp.maximum(w.sum(), 1e-8)

    def wmean(x):
        return (w * x).sum() / denom

    pol, clipped = get_policy_loss(policy_loss)(logp_new, logp_old, adv, clip_eps=clip_eps,
                                                clip_eps_high=clip_eps_high)
    if logp_ref is None:
        if beta != 0:
            raise ValueError("unigrpo_loss: logp_ref is None but beta != 0")
        kl = jnp.zeros_like(logp_new)
    else:
        kl = k3_kl(logp_new, jax.lax.stop_gradient(jnp.asarray(logp_ref, jnp.float32)))
    per_seq = pol + beta * kl
    loss = wmean(per_seq)
    ratio = jnp.exp(logp_new - logp_old)
    metrics = dict(
        loss=loss, policy_loss=wmean(pol), kl=wmean(kl),
        clip_fraction=wmean(clipped.astype(jnp.float32)), ratio_mean=wmean(ratio),
        ratio_max=jnp.max(jnp.where(w > 0, ratio, -jnp.inf)), advantage_mean=wmean(adv),
        kept=w.sum())
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)
