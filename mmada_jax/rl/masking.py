"""UniGRPO's structured noising: response-only masks at stratified mask ratios (spec section 5).

The prompt is never masked. Across the `mu` inner iterations and the `B` responses of a batch the
mask ratios are stratified, not i.i.d.: the range [t_min, t_max] is cut into `mu * B` equal cells
and every (iteration, response) pair gets exactly one cell, so

  * the `mu * B` ratios together cover the range evenly (one ratio per fine cell);
  * each response sees every one of `mu` coarse strata once over its `mu` iterations (its
    log-likelihood estimate averages over low, middle and high noise instead of a lucky draw);
  * each iteration's `B` ratios are spread over the coarse strata as evenly as B allows.

Within its cell a ratio is uniform (jittered stratification). With mu = B = 1 this reduces to
t ~ U(t_min, t_max).

Masks have an exact size: a response of `n` tokens at ratio `t` gets exactly
`clip(round(t * n), 1, n)` masked tokens (round half to even), chosen uniformly without
replacement. Exact counts keep the realised ratio equal to the planned one, which is the point of
stratifying, and guarantee at least one scored token per non-empty response.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def structured_mask_ratios(rng: jax.Array, num_sequences: int, mu: int, t_min: float = 0.1,
                           t_max: float = 0.9, group_size: int | None = None) -> jax.Array:
    """Stratified mask ratios, float32 [mu, num_sequences] in [t_min, t_max).

    Cell of (i, b): coarse stratum c = perm_mu[(i + b) % mu], fine slot f = perm_B^c[b]; the
    ratio is t_min + (t_max - t_min) * (c * B + f + u) / (mu * B) with u ~ U(0, 1).
    With `group_size` G, each contiguous group of G responses (one prompt's samples) is stratified
    on its own (B = G above, independent randomness per group).
    """
    if group_size is not None:
        if group_size < 1 or num_sequences % group_size:
            raise ValueError(f"structured_mask_ratios: {num_sequences} sequences do not split into "
                             f"groups of {group_size}")
        keys = jax.random.split(rng, num_sequences // group_size)
        per = jax.vmap(lambda k: structured_mask_ratios(k, group_size, mu, t_min, t_max))(keys)
        return jnp.moveaxis(per, 0, 1).reshape(mu, num_sequences)  # [P, mu, G] -> [mu, P*G]
    if num_sequences < 1 or mu < 1:
        raise ValueError(f"structured_mask_ratios: num_sequences={num_sequences} and mu={mu} "
                         "must be >= 1")
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ValueError(f"structured_mask_ratios: need 0 <= t_min < t_max <= 1, got "
                         f"t_min={t_min}, t_max={t_max}")
    b = num_sequences
    k_coarse, k_fine, k_jit = jax.random.split(rng, 3)
    # Random permutations as argsorts of uniform keys (one sort each; cheaper to compile than
    # jax.random.permutation's repeated shuffles).
    perm_mu = jnp.argsort(jax.random.uniform(k_coarse, (mu,)))
    coarse = perm_mu[(jnp.arange(mu)[:, None] + jnp.arange(b)[None, :]) % mu]  # [mu, B]
    # One independent permutation of the B fine slots per coarse stratum.
    fine_perm = jnp.argsort(jax.random.uniform(k_fine, (mu, b)), axis=-1)
    fine = fine_perm[coarse, jnp.arange(b)[None, :]]  # [mu, B]
    u = jax.random.uniform(k_jit, (mu, b), jnp.float32)
    cell = (coarse * b + fine).astype(jnp.float32)
    return (t_min + (t_max - t_min) * (cell + u) / (mu * b)).astype(jnp.float32)


def response_mask(rng: jax.Array, response_region: jax.Array, ratios: jax.Array) -> jax.Array:
    """Exact-size random masks inside the response region.

    Args:
      rng: PRNG key.
      response_region: bool [B, L], True on response tokens (never on the prompt).
      ratios: float [B], mask ratio per response.
    Returns:
      bool [B, L]: exactly clip(round(ratio * n_b), 1, n_b) True positions per row, all inside
      the region (all False for an empty region).
    """
    region = jnp.asarray(response_region, bool)
    if region.ndim != 2:
        raise ValueError(f"response_mask: response_region must be [B, L], got {region.shape}")
    ratios = jnp.asarray(ratios, jnp.float32)
    if ratios.shape != region.shape[:1]:
        raise ValueError(f"response_mask: ratios shape {ratios.shape} != [B]={region.shape[:1]}")
    n = region.sum(-1)
    k = jnp.clip(jnp.round(ratios * n), 1, n).astype(jnp.int32)
    # Random keys, outside the region pushed past every inside key; rank = position in sort order.
    keys = jnp.where(region, jax.random.uniform(rng, region.shape), 2.0)
    rank = jnp.argsort(jnp.argsort(keys, axis=-1), axis=-1)
    return (rank < k[:, None]) & region


def apply_mask(tokens: jax.Array, mask: jax.Array, mask_id: int) -> jax.Array:
    """tokens int [..., L] with masked positions replaced by `mask_id`."""
    return jnp.where(mask, jnp.asarray(mask_id, tokens.dtype), tokens)


def unigrpo_masks(rng: jax.Array, response_region: jax.Array, mu: int, t_min: float = 0.1,
                  t_max: float = 0.9, group_size: int | None = None
                  ) -> tuple[jax.Array, jax.Array]:
    """The `mu` fresh masks of one UniGRPO step.

    Returns (masks bool [mu, B, L], ratios float32 [mu, B]); iteration i uses masks[i]. Draw them
    once per rollout batch and reuse them for the old, reference and new policy log-likelihoods,
    so the importance ratio compares the same noisy inputs. `group_size`: stratify per group.
    """
    k_ratio, k_mask = jax.random.split(rng)
    b = response_region.shape[0]
    ratios = structured_mask_ratios(k_ratio, b, mu, t_min, t_max, group_size)
    keys = jax.random.split(k_mask, mu)
    masks = jax.vmap(lambda k, r: response_mask(k, response_region, r))(keys, ratios)
    return masks, ratios
