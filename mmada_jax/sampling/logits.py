"""What the samplers call to get logits: a plain function, or a model with its params.

Samplers are model-agnostic: they take any `logits_fn(tokens [B, L], key_mask [B, L]) ->
logits [B, L, V]` (float32). Internally they only need a window of positions (the active text
block, or the image span) and sometimes only a column range (the image codes), so both wrappers
below offer

    window(tokens, key_mask, start, size, cols=None) -> [B, size, V or hi - lo]

and the model-aware one adds the cached forward (mmada_jax.model.cache):

    prefill(tokens, key_mask, start, size, cols=None) -> (window logits, cache)
    cached_window(cache, tokens, key_mask, start, size, cols=None) -> window logits

Both are pytrees (params are leaves, the model and function are static), so they are passed to
jitted loops as arguments and 16 GB of weights never become compile-time constants.

Positions: `positions="key_mask"` numbers each row's visible tokens 0, 1, ... (left padding does
not shift the prompt; a batch then equals its rows run alone): the choice for text and mmu prompts.
`positions="absolute"` uses 0..L-1 over the whole row, pads included, exactly as t2i rows are
trained (spec section 1).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax
import jax.numpy as jnp
from jax import lax

from mmada_jax.model import cache as cache_lib


def mask_positions(key_mask):
    """[B, L] bool -> int32 [B, L]: index of each visible token among its row's visible tokens
    (0 on leading pads)."""
    return jnp.maximum(jnp.cumsum(key_mask.astype(jnp.int32), axis=1) - 1, 0)


POSITION_MODES = ("key_mask", "absolute")


def _positions(mode: str, tokens, key_mask):
    if mode not in POSITION_MODES:
        raise ValueError(f"positions={mode!r}: use one of {POSITION_MODES}")
    if mode == "absolute" or key_mask is None:
        return None
    return mask_positions(key_mask)


def _cols(x, cols):
    return x if cols is None else x[..., cols[0]:cols[1]]


@flax.struct.dataclass
class FnLogits:
    """Wraps a plain `fn(tokens, key_mask) -> logits [B, L, V]`; no cache."""
    fn: Callable = flax.struct.field(pytree_node=False)
    supports_cache = False

    def __call__(self, tokens, key_mask):
        return self.fn(tokens, key_mask).astype(jnp.float32)

    def window(self, tokens, key_mask, start, size: int, cols=None):
        full = self(tokens, key_mask)
        return _cols(lax.dynamic_slice_in_dim(full, start, size, axis=1), cols)


@flax.struct.dataclass
class ModelLogits:
    """An `MMaDAModel` with its params; see the module docstring."""
    model: Any = flax.struct.field(pytree_node=False)
    params: Any
    positions: str = flax.struct.field(pytree_node=False, default="key_mask")
    # attention impl of the cached window steps (None: the model's). A string, not a module:
    # it is part of the jit cache key, and FrozenConfigDict equality can miss a changed field.
    cache_impl: Optional[str] = flax.struct.field(pytree_node=False, default=None)
    supports_cache = True

    def _pos(self, tokens, key_mask):
        return _positions(self.positions, tokens, key_mask)

    def __call__(self, tokens, key_mask):
        return self.model.apply({"params": self.params}, tokens, key_mask,
                                positions=self._pos(tokens, key_mask)).astype(jnp.float32)

    def _head(self, y, start, size, cols):
        y = lax.dynamic_slice_in_dim(y, start, size, axis=1) if y.shape[1] != size else y
        return cache_lib.head_logits(self.model, self.params, y, cols).astype(jnp.float32)

    def window(self, tokens, key_mask, start, size: int, cols=None):
        y = cache_lib.full_hidden(self.model, self.params, tokens, key_mask,
                                  self._pos(tokens, key_mask))
        return self._head(y, start, size, cols)

    def prefill(self, tokens, key_mask, start, size: int, cols=None):
        y, kv = cache_lib.prefill(self.model, self.params, tokens, key_mask,
                                  self._pos(tokens, key_mask))
        return self._head(y, start, size, cols), kv

    def cached_window(self, kv, tokens, key_mask, start, size: int, cols=None,
                      out_size: Optional[int] = None):
        """Window [start, start+size) recomputed against `kv`; logits of its first `out_size`."""
        m = cache_lib.with_attention_impl(self.model, self.cache_impl)
        pos = self._pos(tokens, key_mask)
        y = cache_lib.window_forward(m, self.params, kv, tokens, key_mask, pos, start, size)
        out_size = out_size or size
        return self._head(y[:, :out_size], 0, out_size, cols)


def make_logits_fn(model, params, positions: str = "key_mask",
                   cache_attention_impl: Optional[str] = None) -> ModelLogits:
    """Model-aware logits for the samplers. `cache_attention_impl` (e.g. 'pallas_decode') is the
    attention used by the cached window steps; None keeps the model's."""
    _positions(positions, None, None)
    return ModelLogits(model, params, positions, cache_attention_impl)


def as_logits(fn) -> Any:
    """ModelLogits / FnLogits pass through; a plain callable is wrapped in FnLogits."""
    if isinstance(fn, (ModelLogits, FnLogits)):
        return fn
    if not callable(fn):
        raise TypeError(f"logits_fn must be callable or made by make_logits_fn, got {type(fn)}")
    return FnLogits(fn)
