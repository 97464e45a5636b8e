"""Building blocks of the MMaDA / LLaDA backbone: RMSNorm, RoPE, projections, SwiGLU MLP.

Exactly the released math (spec section 1): RMSNorm and RoPE in float32, half-split RoPE, no
biases, SwiGLU `down(silu(gate(x)) * up(x))`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

Dtype = Any


def dtype_of(name: str):
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[name]


class RMSNorm(nn.Module):
    """y = weight * cast(x * rsqrt(mean(x^2) + eps)), normalized in float32. x [..., D]."""
    eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                           (x.shape[-1],), self.param_dtype)
        xf = x.astype(jnp.float32)
        var = jnp.mean(jnp.square(xf), axis=-1, keepdims=True)
        y = (xf * jax.lax.rsqrt(var + self.eps)).astype(self.dtype)
        return y * scale.astype(self.dtype)


def rope_tables(positions, head_dim: int, theta: float):
    """cos, sin [B, L, 1, head_dim] in float32 for integer positions [B, L] (half-split layout)."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, L, D/2]
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x, cos, sin):
    """Rotate x [B, L, H, D] in float32: x*cos + cat(-x2, x1)*sin; returns x's dtype."""
    xf = x.astype(jnp.float32)
    x1, x2 = jnp.split(xf, 2, axis=-1)
    rotated = jnp.concatenate([-x2, x1], axis=-1)
    return (xf * cos + rotated * sin).astype(x.dtype)


def dense(features: int, axes: tuple[str, str], name: str, dtype, param_dtype, init_std: float):
    """A bias-free Linen Dense whose [in, out] kernel carries logical axis names."""
    return nn.Dense(features, use_bias=False, dtype=dtype, param_dtype=param_dtype, name=name,
                    kernel_init=nn.with_logical_partitioning(
                        nn.initializers.normal(init_std), axes))


class Embed(nn.Module):
    """Token embedding [V, D]; gathers rows in the parameter dtype, then casts only those rows
    (Flax's nn.Embed would cast the whole table to the compute dtype every step)."""
    num_embeddings: int
    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    init_std: float = 0.02

    @nn.compact
    def __call__(self, tokens):
        table = self.param("embedding", nn.with_logical_partitioning(
            nn.initializers.normal(self.init_std), ("vocab", "embed")),
            (self.num_embeddings, self.features), self.param_dtype)
        return jnp.take(table, tokens, axis=0).astype(self.dtype)
