"""Lookup-free quantization (MAGVIT-v2 as released with Show-o), as pure functions.

Latents z [..., bits] (channels last). Each channel is quantized to its sign, z_q = +1 where
z > 0 and -1 elsewhere (0 maps to -1); the code of a position reads the bits with channel 0 most
significant: code = sum_c 2^(bits-1-c) [z_c > 0].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def power_vals(bits: int) -> jax.Array:
    """int32 [bits]: 2^(bits-1) .. 1 (Show-o's `quantize.power_vals`)."""
    return (2 ** jnp.arange(bits - 1, -1, -1)).astype(jnp.int32)


def quantize(z: jax.Array) -> jax.Array:
    """Sign quantization with a straight-through gradient. z [..., bits] -> z_q in {-1, +1}."""
    q = jnp.where(z > 0, 1.0, -1.0).astype(z.dtype)
    return z + jax.lax.stop_gradient(q - z)


def codes_from_latents(z: jax.Array) -> jax.Array:
    """z [..., bits] -> codes int32 [...]: sum_c 2^(bits-1-c) [z_c > 0]."""
    return jnp.sum((z > 0).astype(jnp.int32) * power_vals(z.shape[-1]), axis=-1)


def codes_to_vectors(codes: jax.Array, bits: int, dtype=jnp.float32) -> jax.Array:
    """codes int [...] in [0, 2^bits) -> z_q [..., bits] in {-1, +1} (row `code` of Show-o's
    `quantize.embedding`)."""
    shifts = jnp.arange(bits - 1, -1, -1, dtype=jnp.int32)
    bit = (codes[..., None].astype(jnp.int32) >> shifts) & 1
    return (2 * bit - 1).astype(dtype)


def codebook(bits: int, dtype=jnp.float32) -> jax.Array:
    """[2^bits, bits]: every code's vector (Show-o's `quantize.embedding`)."""
    return codes_to_vectors(jnp.arange(2 ** bits), bits, dtype)


def entropy_terms(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-sample entropy and codebook entropy of the factorized bit distributions.

    Each channel has logits [-(z-1)^2, -(z+1)^2] over {+1, -1}. Returns
      per_sample: mean over positions and channels of H(p(z_c));
      codebook:   mean over channels of H(mean over all positions of p(z_c)).
    Computed in float32. z [..., bits].
    """
    z = z.astype(jnp.float32).reshape(-1, z.shape[-1])
    logits = jnp.stack([-(z - 1.0) ** 2, -(z + 1.0) ** 2], axis=-1)  # [N, C, 2]
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    per_sample = -jnp.mean(jnp.sum(p * logp, axis=-1))
    mean_p = jnp.mean(p, axis=0)  # [C, 2]
    codebook_h = -jnp.mean(jnp.sum(mean_p * jnp.log(jnp.maximum(mean_p, 1e-30)), axis=-1))
    return per_sample, codebook_h


def lfq_losses(z: jax.Array, beta: float = 0.25, entropy_weight: float = 0.1,
               commit_weight: float = 0.1) -> dict[str, jax.Array]:
    """The released LFQ losses on latents z [..., bits].

    entropy_loss = entropy_weight * (per_sample_entropy - codebook_entropy)
    commit_loss  = commit_weight * (mean((sg(z_q) - z)^2) + beta * mean((z_q - sg(z))^2))
    with z_q the straight-through quantization, as released: the value is
    commit_weight (1 + beta) mse(z, sign z) and the gradient is commit_weight (1 - beta) times that
    of mse(z, sign z) (the beta term, meant for a codebook, pushes z away from its sign).
    """
    zf = z.astype(jnp.float32)
    zq = quantize(zf)
    sg = jax.lax.stop_gradient
    commit = jnp.mean((sg(zq) - zf) ** 2) + beta * jnp.mean((zq - sg(zf)) ** 2)
    per_sample, codebook_h = entropy_terms(zf)
    return dict(entropy_loss=entropy_weight * (per_sample - codebook_h),
                commit_loss=commit_weight * commit,
                per_sample_entropy=per_sample, codebook_entropy=codebook_h)
