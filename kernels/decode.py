"""Decode-shaped attention: a short query block against a long key/value cache.

`decode_attention(q, k_cache, v_cache, key_mask=...)`: q [B, Lq, H, D] (Lq ~ 32-128),
caches [B, Lk, H, D] -> [B, Lq, H, D]. The cache is split into `num_splits` chunks along the
keys (folded into the batch, a free reshape), each chunk runs the flash forward kernel
(returning its log-sum-exp), and the partial outputs are merged in float32. Splitting pays on
GPUs, where B*H programs alone leave most multiprocessors idle; on TPU one split is used.
Forward only (samplers do not differentiate).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from mmada_jax.kernels import common
from mmada_jax.kernels import mask as mask_lib

EMPTY_LSE = 1e29  # forward kernels report lse above this on rows with nothing visible


def _pow2_at_least(x: int, lo: int) -> int:
    p = lo
    while p < x:
        p *= 2
    return p


def default_num_splits(batch: int, heads: int, lk: int, backend: str) -> int:
    """Key splits on GPU when B*H programs would leave over half of the 132 multiprocessors
    idle; a split count that divides the cache into 128-key chunks (no copy of the cache)."""
    if backend != "gpu" or batch * heads >= 66:
        return 1
    want = min(-(-132 // max(1, batch * heads)), lk // 256)
    for ns in range(max(1, want), 1, -1):
        if lk % (ns * 128) == 0:
            return ns
    return 1


def _forward_fn(backend: str, lq: int):
    if backend == "gpu":
        from mmada_jax.kernels import gpu_flash
        bq = min(128, _pow2_at_least(lq, 16))
        cfg = gpu_flash.GpuConfig(block_q=bq, block_k=128 if bq <= 64 else 64,
                                  num_warps=4, num_stages=3)
        return lambda q, k, v, m, scale: gpu_flash.flash_forward_gpu(q, k, v, m, scale=scale,
                                                                     config=cfg)
    from mmada_jax.kernels import tpu_flash
    bq = min(512, common.round_up(lq, 8))
    return lambda q, k, v, m, scale: tpu_flash.flash_forward_tpu(q, k, v, m, scale=scale,
                                                                 block_q=bq)


def merge_partials(outs, lses):
    """Merge split results: outs [S, B, Lq, H, D], lses f32 [S, B, Lq, H] -> [B, Lq, H, D] f32."""
    lses = jnp.where(lses > EMPTY_LSE, -jnp.inf, lses)
    top = jnp.max(lses, axis=0)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    w = jnp.exp(lses - top)                                   # 0 for empty splits
    total = jnp.sum(w, axis=0)
    out = jnp.einsum("sbqh,sbqhd->bqhd", w, outs.astype(jnp.float32))
    return out / jnp.where(total == 0, 1.0, total)[..., None]


def decode_attention(q, k_cache, v_cache, key_mask=None, *, segment_ids=None,
                     kv_segment_ids=None, block_causal: Optional[int] = None, q_offset: int = 0,
                     scale=None, num_splits: Optional[int] = None, backend: Optional[str] = None):
    """Attention of a short query block over a cache. Shapes in the module docstring.

    key_mask bool [B, Lk] marks the valid cache entries; segment ids as in `AttentionMask`.
    backend: 'gpu' for the Triton kernel, anything else for the TPU kernel (interpret on CPU).
    """
    common.check_qkv(q, k_cache, v_cache, "decode_attention")
    backend = backend or jax.default_backend()
    b, lq, h, d = q.shape
    lk = k_cache.shape[1]
    mask = mask_lib.make_mask(key_mask, segment_ids, kv_segment_ids,
                              block_causal=block_causal, q_offset=q_offset)
    ns = num_splits or default_num_splits(b, h, lk, backend)
    if block_causal is not None:
        ns = 1  # key positions must stay absolute
    fwd = _forward_fn(backend, lq)
    if ns == 1:
        return fwd(q, k_cache, v_cache, mask, scale)[0]
    # Fold the splits into the batch: [B, ns*c, ...] -> [B*ns, c, ...].
    qid, kid = mask_lib.canonical_ids(mask, b, lq, lk)
    chunk = common.round_up(-(-lk // ns), 128)
    lk_p = chunk * ns
    qid, kid = mask_lib.pad_ids(qid, kid, lq, lk_p)
    kc = common.pad_seq(k_cache, lk_p).reshape(b * ns, chunk, h, d)
    vc = common.pad_seq(v_cache, lk_p).reshape(b * ns, chunk, h, d)
    qs = jnp.repeat(q, ns, axis=0)
    split_mask = mask_lib.AttentionMask(
        key_mask=kid.reshape(b * ns, chunk) != mask_lib.MASKED_KEY,
        q_segment_ids=jnp.repeat(qid, ns, axis=0), kv_segment_ids=kid.reshape(b * ns, chunk))
    outs, lses = fwd(qs, kc, vc, split_mask, scale)
    outs = outs.reshape(b, ns, lq, h, d).transpose(1, 0, 2, 3, 4)
    lses = lses.reshape(b, ns, lq, h).transpose(1, 0, 2, 3)
    return merge_partials(outs, lses).astype(q.dtype)
