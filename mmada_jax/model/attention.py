"""One attention entry point with an implementation switch.

`attention(q, k, v, impl=...)` is what the model calls. Implementations register by name
(`register_attention_impl`); `xla` (plain jnp, the reference semantics) lives here, and the
Pallas / cuDNN ones live in `mmada_jax.kernels` and register themselves when imported.

Shapes: q [B, Lq, H, D], k and v [B, Lk, H, D]. Masks (all optional):
  key_mask    [B, Lk] bool: False keys are never attended to (padding).
  segment_ids [B, Lq] and kv_segment_ids [B, Lk] int: tokens attend only within their segment.
A query row with no visible key returns zeros (never NaN).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

_IMPLS: dict[str, Callable] = {}


def register_attention_impl(name: str, fn: Callable | None = None):
    """Register `fn(q, k, v, *, key_mask, segment_ids, kv_segment_ids, scale)` under `name`."""
    def deco(f):
        _IMPLS[name] = f
        return f
    return deco(fn) if fn is not None else deco


def available_impls() -> list[str]:
    _load_kernels()
    return sorted(_IMPLS) + ["auto"]


def _load_kernels():
    try:  # registers 'pallas', 'cudnn', ... when the kernels package is present
        import mmada_jax.kernels  # noqa: F401
    except ImportError:
        pass


def resolve_impl(impl: str) -> str:
    """Map 'auto' to a concrete implementation for the default backend."""
    if impl != "auto":
        return impl
    _load_kernels()
    resolver = _IMPLS.get("__auto__")
    if resolver is not None:
        return resolver()
    return "xla"


def attention(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None,
              scale: Optional[float] = None, impl: str = "xla"):
    """Bidirectional multi-head attention. Returns [B, Lq, H, D] in q's dtype."""
    if scale is None:
        scale = q.shape[-1] ** -0.5
    name = resolve_impl(impl)
    if name not in _IMPLS:
        _load_kernels()
    if name not in _IMPLS or name.startswith("__"):
        raise ValueError(f"attention impl {impl!r} is not available; "
                         f"choose from {available_impls()}")
    if segment_ids is not None and kv_segment_ids is None:
        kv_segment_ids = segment_ids
    return _IMPLS[name](q, k, v, key_mask=key_mask, segment_ids=segment_ids,
                        kv_segment_ids=kv_segment_ids, scale=scale)


def visibility_mask(key_mask, segment_ids, kv_segment_ids, lq: int, lk: int, batch: int):
    """Boolean [B, 1, Lq, Lk] (or None when nothing is masked)."""
    m = None
    if key_mask is not None:
        m = key_mask[:, None, None, :].astype(bool)
    if segment_ids is not None:
        seg = segment_ids[:, None, :, None] == kv_segment_ids[:, None, None, :]
        m = seg if m is None else (m & seg)
    return m


@register_attention_impl("xla")
def xla_attention(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    """Reference semantics in plain jnp: float32 softmax, masked rows -> 0."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    m = visibility_mask(key_mask, segment_ids, kv_segment_ids, lq, lk, b)
    if m is not None:
        s = jnp.where(m, s, jnp.finfo(jnp.float32).min)
    p = jax.nn.softmax(s, axis=-1)
    if m is not None:
        p = jnp.where(m, p, 0.0)  # rows with no visible key give zeros, not a uniform average
    out = jnp.einsum("bhqk,bkhd->bqhd", p.astype(v.dtype), v,
                     preferred_element_type=jnp.float32)
    return out.astype(q.dtype)
