"""A cached forward for diffusion sampling, built from `Block.qkv / attend / mlp` and the same params.

    hidden, cache = prefill(model, params, tokens, key_mask, positions)    # full forward + K/V
    hidden_w = window_forward(model, params, cache, tokens, key_mask, positions, start, size)

`prefill` is the ordinary forward pass that also returns every layer's keys and values
(`KVCache`, [N, B, L, Hkv, Dh] each). `window_forward` recomputes only the tokens of the window
[start, start + size): their queries, keys and values at every layer, attending to the cached
keys/values of all other positions and to the fresh ones of the window. With a cache made from
the same tokens it equals the full forward on the window (exact); after the window's tokens
change it is the block-wise approximation of Fast-dLLM (the other positions' K/V are stale until
the next `prefill`). Works for scanned (`params['blocks']`, axis 0) and unrolled (`blocks_{i}`)
layers. `head_logits` applies ln_f and the LM head, optionally to a column range only.
"""

from __future__ import annotations

from typing import Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
from jax import lax

from mmada_jax.model.layers import dtype_of
from mmada_jax.model.transformer import Block


@flax.struct.dataclass
class KVCache:
    """Per-layer keys and values of every position: k, v [N, B, L, Hkv, Dh]."""
    k: jax.Array
    v: jax.Array


def with_attention_impl(model, impl: Optional[str]):
    """The same module class with `cfg.attention_impl = impl` (None: unchanged); params carry over."""
    if impl is None or impl == model.cfg.attention_impl:
        return model
    c = model.cfg.to_dict() if hasattr(model.cfg, "to_dict") else dict(model.cfg)
    c["attention_impl"] = impl
    return type(model)(ml_collections.FrozenConfigDict(c))


def _layer_params(model, params):
    """Per-layer params stacked on axis 0 (scan) or a list (unrolled)."""
    if model.cfg.scan_layers:
        return params["blocks"]
    return [params[f"blocks_{i}"] for i in range(model.cfg.n_layers)]


def _run_layers(model, params, x, fn, extra=None):
    """Apply `fn(block, layer_params, x, extra_i) -> (x, out)` over layers (`extra`: a pytree with
    a leading layer axis, or None); outs are stacked on axis 0."""
    blk = Block(model.cfg)
    lp = _layer_params(model, params)
    if model.cfg.scan_layers:
        return lax.scan(lambda carry, xs: fn(blk, xs[0], carry, xs[1]), x, (lp, extra))
    outs = []
    for i, p in enumerate(lp):
        e = None if extra is None else jax.tree_util.tree_map(lambda a: a[i], extra)
        x, o = fn(blk, p, x, e)
        outs.append(o)
    if outs[0] is None:
        return x, None
    return x, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outs)


def _embed(model, params, tokens, positions):
    return model.apply({"params": params}, tokens, positions, method="embed")


def prefill(model, params, tokens, key_mask=None, positions=None):
    """Full forward. tokens [B, L] -> (hidden [B, L, D] before ln_f, KVCache)."""
    x, cos, sin = _embed(model, params, tokens, positions)

    def layer(blk, p, x, _):
        q, k, v = blk.apply({"params": p}, x, cos, sin, method="qkv")
        h = blk.apply({"params": p}, x, q, k, v, key_mask, None, method="attend")
        return blk.apply({"params": p}, h, method="mlp"), (k, v)

    x, (ks, vs) = _run_layers(model, params, x, layer)
    return x, KVCache(ks, vs)


def window_forward(model, params, cache: KVCache, tokens, key_mask=None, positions=None,
                   start=0, size: int = 1):
    """Hidden states [B, size, D] of tokens[:, start:start+size] against the cache.

    tokens [B, L] (only the window is read), key_mask [B, L], positions [B, L] (None: 0..L-1);
    `start` may be traced, `size` is static.
    """
    b, l = tokens.shape
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(l), (b, l))
    win = lax.dynamic_slice_in_dim(tokens, start, size, axis=1)
    pos = lax.dynamic_slice_in_dim(positions, start, size, axis=1)
    x, cos, sin = _embed(model, params, win, pos)

    def layer(blk, p, x, kv):
        q, k, v = blk.apply({"params": p}, x, cos, sin, method="qkv")
        kc = lax.dynamic_update_slice_in_dim(kv[0], k.astype(kv[0].dtype), start, 1)
        vc = lax.dynamic_update_slice_in_dim(kv[1], v.astype(kv[1].dtype), start, 1)
        h = blk.apply({"params": p}, x, q, kc, vc, key_mask, None, method="attend")
        return blk.apply({"params": p}, h, method="mlp"), None

    x, _ = _run_layers(model, params, x, layer, (cache.k, cache.v))
    return x


def head_logits(model, params, y, cols: Optional[tuple[int, int]] = None):
    """ln_f + LM head on hidden y [B, S, D] -> logits [B, S, V] (or [B, S, hi - lo] for
    `cols=(lo, hi)`, the same arithmetic on a slice of the head's columns)."""
    if cols is None:
        return model.apply({"params": params}, y, method="head")
    c = model.cfg
    n = model.apply({"params": params}, y, method=lambda m, y: m.ln_f(y))
    dt = dtype_of(c.dtype)
    kernel = params["ff_out"]["kernel"][:, cols[0]:cols[1]]
    out = lax.dot_general(n.astype(dt), kernel.astype(dt), (((n.ndim - 1,), (0,)), ((), ())))
    return out.astype(dtype_of(c.logits_dtype))


def full_hidden(model, params, tokens, key_mask=None, positions=None):
    """The model's own forward (no cache) up to the hidden states [B, L, D]."""
    return model.apply({"params": params}, tokens, key_mask, None, positions, method="hidden")

