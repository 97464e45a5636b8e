"""Rematerialization policies by name (`config.model.remat`).

`none` keeps every activation; `full` recomputes the whole block in the backward pass; the others
save some intermediates. Register more with `register_remat_policy(name, policy)`.
"""

from __future__ import annotations

import jax

_NONE = object()
_POLICIES = {
    "none": _NONE,
    "full": None,  # jax.checkpoint with no policy saves nothing
    "save_dots": jax.checkpoint_policies.checkpoint_dots,
    "save_dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_attn_out": jax.checkpoint_policies.save_only_these_names("attn_out"),
    "save_qkv_attn_out": jax.checkpoint_policies.save_only_these_names(
        "query", "key", "value", "attn_out"),
}


def register_remat_policy(name: str, policy) -> None:
    _POLICIES[name] = policy


def remat_policy(name: str):
    """Returns (use_remat, policy)."""
    if name not in _POLICIES:
        raise ValueError(f"config.model.remat={name!r} unknown; known: {sorted(_POLICIES)}")
    p = _POLICIES[name]
    return (p is not _NONE), (None if p is _NONE else p)
