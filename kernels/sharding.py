"""Run an attention kernel per shard (`jax.shard_map`) when batch / heads are sharded on a mesh.

Kernels see whole rows, so only batch and heads may be split. The mesh axes come from the
model's logical rules (`activation_batch`, `activation_heads`; defaults ('data', 'fsdp') and
'tensor'); axes missing from the mesh, or not dividing the dimension, are dropped.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
from jax.sharding import PartitionSpec as P

DEFAULT_BATCH_AXES = ("data", "fsdp")
DEFAULT_HEAD_AXES = ("tensor",)


def _rule_axes(logical: str, default: Sequence[str]) -> tuple:
    try:
        from flax import linen as nn
        rules = nn.get_logical_axis_rules()
    except Exception:  # flax missing or no rules active
        rules = ()
    for name, axes in rules or ():
        if name == logical:
            if axes is None:
                return ()
            return (axes,) if isinstance(axes, str) else tuple(axes)
    return tuple(default)


def _fit(axes: Sequence[str], mesh, dim: int) -> tuple:
    """Mesh axes (present, size > 1) whose product divides `dim`, in order."""
    kept, prod = [], 1
    for a in axes:
        size = mesh.shape.get(a, 1) if a in mesh.axis_names else 1
        if size > 1 and dim % (prod * size) == 0:
            kept.append(a)
            prod *= size
    return tuple(kept)


def current_mesh(mesh=None):
    """The given mesh, else the one set by `jax.set_mesh`, else None."""
    if mesh is not None:
        return mesh
    m = jax.sharding.get_abstract_mesh()
    if m is None or m.empty or m.size == 1:
        return None
    return m


def sharded_attention(fn: Callable, mesh=None, *, batch_axes: Optional[Sequence[str]] = None,
                      head_axes: Optional[Sequence[str]] = None) -> Callable:
    """Wrap fn(q, k, v, *, key_mask, segment_ids, kv_segment_ids, scale) to run per shard.

    q [B, Lq, H, D], k/v [B, Lk, H, D]; masks [B, L]. Without a mesh (or with nothing to
    split) fn is called directly.
    """
    def wrapped(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
        m = current_mesh(mesh)
        ba = hx = ()
        if m is not None:
            ba = _fit(batch_axes if batch_axes is not None
                      else _rule_axes("activation_batch", DEFAULT_BATCH_AXES), m, q.shape[0])
            hx = _fit(head_axes if head_axes is not None
                      else _rule_axes("activation_heads", DEFAULT_HEAD_AXES), m, q.shape[2])
        if not ba and not hx:
            return fn(q, k, v, key_mask=key_mask, segment_ids=segment_ids,
                      kv_segment_ids=kv_segment_ids, scale=scale)
        if segment_ids is not None and kv_segment_ids is None:
            kv_segment_ids = segment_ids
        bspec = ba if ba else None
        hspec = hx if hx else None
        qkv_spec = P(bspec, None, hspec, None)
        row_spec = P(bspec, None)
        masks = {n: a for n, a in (("key_mask", key_mask), ("segment_ids", segment_ids),
                                    ("kv_segment_ids", kv_segment_ids)) if a is not None}
        names = tuple(masks)

        def local(q, k, v, *mask_arrays):
            return fn(q, k, v, scale=scale, **dict(zip(names, mask_arrays)))

        return jax.shard_map(local, mesh=m, in_specs=(qkv_spec,) * 3 + (row_spec,) * len(names),
                             out_specs=qkv_spec, check_vma=False)(q, k, v, *masks.values())

    wrapped.__name__ = getattr(fn, "__name__", "attention") + "_sharded"
    wrapped.__doc__ = fn.__doc__
    return wrapped
