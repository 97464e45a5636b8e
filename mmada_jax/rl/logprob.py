"""UniGRPO's per-sequence log-likelihood of a response under a masked diffusion model.

log pi(o | q) is estimated as the mean over masked positions of log p(o_t | q, masked o), averaged
over the `mu` fresh maskings of one step (spec section 5). Everything is float32 and works on the
logits the model returns; the [B, L, V] log-softmax is never materialised (logsumexp minus the
gathered target logit), which matters at V = 134656.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def token_logprob(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log softmax(logits)[target], float32 [B, L], from logits [B, L, V] and int targets [B, L]."""
    logits = logits.astype(jnp.float32)
    gathered = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return gathered - jax.nn.logsumexp(logits, axis=-1)


def masked_token_logprob(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean log p(target) over the masked positions of each row.

    Args:
      logits: [B, L, V] (any float dtype; computed in float32).
      targets: int [B, L], the clean tokens.
      mask: bool [B, L], positions that were masked in the model input.
    Returns:
      float32 [B]; 0 for a row with no masked position.
    """
    if logits.shape[:2] != targets.shape or targets.shape != mask.shape:
        raise ValueError(f"masked_token_logprob: shapes logits {logits.shape}, targets "
                         f"{targets.shape}, mask {mask.shape} do not agree on [B, L]")
    lp = token_logprob(logits, targets)
    m = mask.astype(jnp.float32)
    return (lp * m).sum(-1) / jnp.maximum(m.sum(-1), 1.0)


def sequence_logprob(logits_fn: Callable[[jax.Array], jax.Array], tokens: jax.Array,
                     masks: jax.Array, mask_id: int) -> jax.Array:
    """mu-averaged masked log-likelihood of each sequence.

    Args:
      logits_fn: noisy tokens int [B, L] -> logits [B, L, V] (e.g. a closure over model params).
      tokens: int [B, L], prompt + clean response.
      masks: bool [mu, B, L], one mask per inner iteration (from `masking.unigrpo_masks`).
      mask_id: the mask token id (`layout.mask`).
    Returns:
      float32 [B]: mean over i of masked_token_logprob(logits_fn(masked_i), tokens, masks[i]).
    The iterations run one after another (`lax.map`), so only one [B, L, V] logits lives at a time.
    """
    if masks.ndim != 3 or masks.shape[1:] != tokens.shape:
        raise ValueError(f"sequence_logprob: masks must be [mu, B, L] with [B, L]={tokens.shape}, "
                         f"got {masks.shape}")

    def one(mask):
        noisy = jnp.where(mask, jnp.asarray(mask_id, tokens.dtype), tokens)
        return masked_token_logprob(logits_fn(noisy), tokens, mask)

    return jax.lax.map(one, masks).mean(0)
