"""The attention mask specification shared by every attention implementation.

A key j is visible to a query i of row b when all of these hold:
  key_mask[b, j]                                   (key padding; left or right)
  q_segment_ids[b, i] == kv_segment_ids[b, j]      (packed rows)
  j // block_causal <= (i + q_offset) // block_causal   (block-causal variant, optional)
A query with no visible key returns zeros, never NaN. `reference_attention` defines this in
plain jnp; the kernels consume the canonical integer form from `canonical_ids`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

# kv id given to keys that nothing may see (padding). Segment ids must be > this value.
MASKED_KEY = np.int32(np.iinfo(np.int32).min)

# Block visibility states (see `block_states`).
SKIP, PARTIAL, FULL = 0, 1, 2


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AttentionMask:
    """Mask spec. Arrays are optional; `block_causal` and `q_offset` are static ints.

    key_mask       bool [B, Lk]: False keys are never attended to.
    q_segment_ids  int  [B, Lq]; kv_segment_ids int [B, Lk]: attend within a segment only.
    block_causal   block size in tokens: queries see keys of their own and earlier blocks.
    q_offset       position of query 0 among the keys (decode against a cache), for block_causal.
    """
    key_mask: Optional[jax.Array] = None
    q_segment_ids: Optional[jax.Array] = None
    kv_segment_ids: Optional[jax.Array] = None
    block_causal: Optional[int] = dataclasses.field(default=None, metadata=dict(static=True))
    q_offset: int = dataclasses.field(default=0, metadata=dict(static=True))

    def __post_init__(self):
        if (self.q_segment_ids is None) != (self.kv_segment_ids is None):
            raise ValueError("AttentionMask: give both q_segment_ids and kv_segment_ids, or neither")
        if self.block_causal is not None and int(self.block_causal) < 1:
            raise ValueError(f"AttentionMask: block_causal must be >= 1, got {self.block_causal}")

    @property
    def is_empty(self) -> bool:
        return (self.key_mask is None and self.q_segment_ids is None
                and self.block_causal is None)

    def dense(self, lq: int, lk: int) -> Optional[jax.Array]:
        """Boolean visibility [B or 1, 1, Lq, Lk], or None when nothing is masked."""
        m = None
        if self.key_mask is not None:
            m = self.key_mask.astype(bool)[:, None, None, :]
        if self.q_segment_ids is not None:
            seg = self.q_segment_ids[:, None, :, None] == self.kv_segment_ids[:, None, None, :]
            m = seg if m is None else m & seg
        if self.block_causal is not None:
            qb = (jnp.arange(lq) + self.q_offset) // self.block_causal
            kb = jnp.arange(lk) // self.block_causal
            bc = (kb[None, :] <= qb[:, None])[None, None]
            m = bc if m is None else m & bc
        return m


def make_mask(key_mask=None, segment_ids=None, kv_segment_ids=None, *,
              block_causal: Optional[int] = None, q_offset: int = 0) -> AttentionMask:
    """Build a mask from the model's arguments (kv_segment_ids defaults to segment_ids)."""
    if segment_ids is not None and kv_segment_ids is None:
        kv_segment_ids = segment_ids
    return AttentionMask(key_mask=key_mask, q_segment_ids=segment_ids,
                         kv_segment_ids=kv_segment_ids, block_causal=block_causal,
                         q_offset=q_offset)


def key_mask_from_lengths(lengths, length: int, *, left_padded: bool = False) -> jax.Array:
    """bool [B, length]: `lengths[b]` valid keys, padding on the right (or the left)."""
    pos = jnp.arange(length)[None, :]
    lengths = jnp.asarray(lengths)[:, None]
    return pos >= length - lengths if left_padded else pos < lengths


def segment_ids_from_lengths(seg_lengths, length: int) -> jax.Array:
    """int32 [B, length] from per-row segment lengths [B, S]; positions past the sum get -1."""
    seg_lengths = jnp.asarray(seg_lengths)
    ends = jnp.cumsum(seg_lengths, axis=-1)  # [B, S]
    pos = jnp.arange(length)
    ids = jnp.sum(pos[None, :, None] >= ends[:, None, :], axis=-1).astype(jnp.int32)
    return jnp.where(ids < seg_lengths.shape[-1], ids, -1)


def reference_attention(q, k, v, mask: Optional[AttentionMask] = None, *, scale=None):
    """Plain jnp attention defining the semantics. q [B,Lq,H,D], k/v [B,Lk,H,D] -> [B,Lq,H,D].

    float32 scores and softmax; masked-out rows return zeros.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    lq, lk = q.shape[1], k.shape[1]
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    m = None if mask is None else mask.dense(lq, lk)
    if m is not None:
        s = jnp.where(m, s, -jnp.inf)
    row_max = jnp.max(s, axis=-1, keepdims=True)
    row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
    p = jnp.exp(s - jax.lax.stop_gradient(row_max))
    denom = jnp.sum(p, axis=-1, keepdims=True)
    p = p / jnp.where(denom == 0, 1.0, denom)
    out = jnp.einsum("bhqk,bkhd->bqhd", p.astype(v.dtype), v,
                     preferred_element_type=jnp.float32)
    return out.astype(q.dtype)


def canonical_ids(mask: Optional[AttentionMask], batch: int, lq: int, lk: int):
    """Kernel form: (q_ids int32 [B, Lq], kv_ids int32 [B, Lk]); key j visible to query i
    iff q_ids[i] == kv_ids[j] (and the block-causal rule). Masked keys get MASKED_KEY."""
    q_ids = jnp.zeros((batch, lq), jnp.int32)
    kv_ids = jnp.zeros((batch, lk), jnp.int32)
    if mask is not None and mask.q_segment_ids is not None:
        q_ids = jnp.broadcast_to(mask.q_segment_ids.astype(jnp.int32), (batch, lq))
        kv_ids = jnp.broadcast_to(mask.kv_segment_ids.astype(jnp.int32), (batch, lk))
    if mask is not None and mask.key_mask is not None:
        km = jnp.broadcast_to(mask.key_mask.astype(bool), (batch, lk))
        kv_ids = jnp.where(km, kv_ids, MASKED_KEY)
    return q_ids, kv_ids


def pad_ids(q_ids, kv_ids, lq_pad: int, lk_pad: int):
    """Pad ids to block multiples: padded keys are masked, padded queries are discarded."""
    q_ids = jnp.pad(q_ids, ((0, 0), (0, lq_pad - q_ids.shape[1])))
    kv_ids = jnp.pad(kv_ids, ((0, 0), (0, lk_pad - kv_ids.shape[1])),
                     constant_values=MASKED_KEY)
    return q_ids, kv_ids


def block_states(q_ids, kv_ids, block_q: int, block_k: int, *,
                 block_causal: Optional[int] = None, q_offset: int = 0) -> jax.Array:
    """int32 [B, nq, nk]: SKIP (nothing visible), PARTIAL (apply the mask) or FULL (all visible).

    Conservative: from per-block id ranges, so a PARTIAL block may turn out empty; SKIP and
    FULL are exact. Lengths must be multiples of the blocks (see `pad_ids`).
    """
    b, lq = q_ids.shape
    lk = kv_ids.shape[1]
    nq, nk = lq // block_q, lk // block_k
    qb = q_ids.reshape(b, nq, block_q)
    qmin, qmax = qb.min(-1), qb.max(-1)
    kb = kv_ids.reshape(b, nk, block_k)
    valid = kb != MASKED_KEY
    big = np.iinfo(np.int32).max
    kmin = jnp.where(valid, kb, big).min(-1)
    kmax = jnp.where(valid, kb, MASKED_KEY).max(-1)
    any_valid = valid.any(-1)
    all_valid = valid.all(-1)
    overlap = (any_valid[:, None, :] & (qmin[:, :, None] <= kmax[:, None, :])
               & (kmin[:, None, :] <= qmax[:, :, None]))
    full = (all_valid[:, None, :] & (qmin == qmax)[:, :, None] & (kmin == kmax)[:, None, :]
            & (qmin[:, :, None] == kmin[:, None, :]))
    if block_causal is not None:
        q_first = (jnp.arange(nq) * block_q + q_offset) // block_causal
        q_last = (jnp.arange(nq) * block_q + block_q - 1 + q_offset) // block_causal
        k_first = (jnp.arange(nk) * block_k) // block_causal
        k_last = (jnp.arange(nk) * block_k + block_k - 1) // block_causal
        overlap &= (k_first[None, :] <= q_last[:, None])[None]
        full &= (k_last[None, :] <= q_first[:, None])[None]
    return jnp.where(full, FULL, jnp.where(overlap, PARTIAL, SKIP)).astype(jnp.int32)
