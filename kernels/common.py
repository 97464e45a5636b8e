"""Small helpers shared by the TPU and GPU kernels: padding, block tables, interpret choice."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from mmada_jax.kernels import mask as mask_lib


_INTERPRET = contextvars.ContextVar("mmada_kernels_interpret", default=None)


@contextlib.contextmanager
def interpret_mode(value: Optional[bool]):
    """Force (True/False) or restore automatic (None) interpret mode while tracing, e.g.
    False to compile TPU kernels for a topology on a CPU host."""
    token = _INTERPRET.set(value)
    try:
        yield
    finally:
        _INTERPRET.reset(token)


def use_interpret(interpret: Optional[bool]) -> bool:
    """Interpret mode unless running on an accelerator (None = automatic)."""
    if interpret is not None:
        return bool(interpret)
    forced = _INTERPRET.get()
    if forced is not None:
        return forced
    return jax.default_backend() == "cpu"


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def pad_seq(x, length: int):
    """Zero-pad axis 1 of x [B, L, ...] to `length`."""
    extra = length - x.shape[1]
    if extra == 0:
        return x
    return jnp.pad(x, [(0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 2))


def fetch_table(states):
    """int32 [..., n]: block index to load at each step of the last axis.

    A skipped step repeats the last visible block (or the first visible one when none came
    before), so the pipeline issues no new copy for it.
    """
    n = states.shape[-1]
    pos = jnp.arange(n, dtype=jnp.int32)
    vis = states != mask_lib.SKIP
    last = jax.lax.cummax(jnp.where(vis, pos, -1), axis=states.ndim - 1)
    first = jnp.argmax(vis, axis=-1).astype(jnp.int32)[..., None]
    return jnp.where(last >= 0, last, first).astype(jnp.int32)


def check_qkv(q, k, v, where: str):
    """Raise a clear error unless q [B,Lq,H,D], k/v [B,Lk,H,D] agree."""
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"{where}: q, k, v must be [B, L, H, D]; got {q.shape}, {k.shape}, {v.shape}")
    if k.shape != v.shape:
        raise ValueError(f"{where}: k {k.shape} and v {v.shape} must have the same shape")
    if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(f"{where}: q {q.shape} and k {k.shape} differ in batch, heads or head dim")


def flash_with_vjp(forward: Callable, backward: Callable) -> Callable:
    """The custom_vjp every flash kernel shares, over padded inputs and a static config `cfg`:
    `forward(q, k, v, qid, kid, cfg) -> (o, lse)` (lse saved for the backward) and
    `backward(q, k, v, qid, kid, o, lse, do, cfg) -> (dq, dk, dv)`; the ids get no gradient."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
    def flash(q, k, v, qid, kid, cfg):
        return forward(q, k, v, qid, kid, cfg)[0]

    def flash_fwd(q, k, v, qid, kid, cfg):
        o, lse = forward(q, k, v, qid, kid, cfg)
        return o, (q, k, v, qid, kid, o, lse)

    def flash_bwd(cfg, res, do):
        q, k, v, qid, kid, o, lse = res
        dq, dk, dv = backward(q, k, v, qid, kid, o, lse, do, cfg)
        return dq, dk, dv, None, None

    flash.defvjp(flash_fwd, flash_bwd)
    return flash


def block_table(states):
    """[B, n, m] block states -> int32 [B, n, m + 2]: (#full, #partial, full js..., partial js...):
    the per-row list of kv (or, transposed, q) blocks a GPU kernel visits, full blocks first."""
    m = states.shape[-1]
    j = jnp.arange(m, dtype=jnp.int32)
    rank = jnp.where(states == mask_lib.FULL, 0, jnp.where(states == mask_lib.PARTIAL, 1, 2))
    order = jnp.argsort(rank * m + j, axis=-1).astype(jnp.int32)
    n_full = jnp.sum(states == mask_lib.FULL, axis=-1, dtype=jnp.int32)
    n_part = jnp.sum(states == mask_lib.PARTIAL, axis=-1, dtype=jnp.int32)
    return jnp.concatenate([n_full[..., None], n_part[..., None], order], axis=-1)
