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
    axes: tuple = ("vocab", "embed")  # logical axes of the table

    @nn.compact
    def __call__(self, tokens):
        table = self.param("embedding", nn.with_logical_partitioning(
            nn.initializers.normal(self.init_std), self.axes),
            (self.num_embeddings, self.features), self.param_dtype)
        return jnp.take(table, tokens, axis=0).astype(self.dtype)


def swiglu(gate, up):
    """silu(gate) * up with XLA's own gradient."""
    return nn.silu(gate) * up


@jax.custom_vjp
def swiglu_split(gate, up):
    """silu(gate) * up whose backward computes (d gate, d up) elementwise behind an
    optimization barrier. On XLA:CPU the plain gradient fuses that elementwise work with the
    transpose feeding the weight-gradient dot into one slow strided loop (10 ms of a 215 ms CPU
    demo step per layer); split, the d128 demo model's MLP forward+backward runs 26 -> 17 ms.
    Same values as `swiglu` up to float rounding."""
    return swiglu(gate, up)


def _swiglu_split_fwd(gate, up):
    return swiglu(gate, up), (gate, up)


def _swiglu_split_bwd(res, dy):
    gate, up = res
    g = gate.astype(jnp.float32)
    s = jax.nn.sigmoid(g)
    dyf = dy.astype(jnp.float32)
    d_gate = (dyf * up.astype(jnp.float32) * s * (1.0 + g * (1.0 - s))).astype(gate.dtype)
    d_up = (dyf * g * s).astype(up.dtype)
    return jax.lax.optimization_barrier((d_gate, d_up))


swiglu_split.defvjp(_swiglu_split_fwd, _swiglu_split_bwd)

SWIGLU_GRADS = ("auto", "xla", "split")


def swiglu_fn(mode: str):
    """The SwiGLU product for `config.model.swiglu_grad`: 'xla', 'split' (`swiglu_split`) or
    'auto' ('split' when the default backend is the CPU, where it was measured faster; 'xla'
    on accelerators)."""
    if mode not in SWIGLU_GRADS:
        raise ValueError(f"config.model.swiglu_grad={mode!r}: known {SWIGLU_GRADS}")
    if mode == "auto":
        mode = "split" if jax.default_backend() == "cpu" else "xla"
    return swiglu_split if mode == "split" else swiglu
