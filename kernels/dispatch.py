"""Registers the kernels with `mmada_jax.model.attention` and picks one for `impl='auto'`.

Names: 'pallas' (Mosaic GPU kernel on Hopper, Triton kernel on other GPUs, TPU kernel
elsewhere, interpret mode on CPU), 'pallas_tpu', 'pallas_gpu' (Triton),
'pallas_mgpu' (Hopper Mosaic GPU kernel, wgmma/TMA), 'pallas_decode' (split-key decode kernel,
forward only), 'cudnn' (jax.nn.dot_product_attention), 'gpu_best' (per call, what measured
fastest: see GPU_AUTO), '__auto__'. Every kernel impl runs per shard
(`sharding.sharded_attention`) when called under a mesh that splits batch or heads.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmada_jax.kernels import common
from mmada_jax.kernels import decode as decode_lib
from mmada_jax.kernels import gpu_flash, gpu_mgpu, tpu_flash
from mmada_jax.kernels import mask as mask_lib
from mmada_jax.kernels.sharding import sharded_attention
from mmada_jax.model.attention import register_attention_impl

# impl='auto' on GPU: 'gpu_best' picks per call what measured faster on an H100
# (benchmarks/results/attention.md): the Mosaic GPU kernel for masked calls on Hopper (see
# MGPU_WINS), else the Triton Pallas kernel for packed segments (it skips the
# cross-segment blocks, ~3x cuDNN's boolean mask), cuDNN otherwise (unmasked or padding).
GPU_AUTO = "gpu_best"
# Where the Mosaic GPU kernel ('pallas_mgpu', Hopper only) beat the above on the H100
# (benchmarks/results/attention.md); gpu_best uses it there when `mgpu_supported`.
# 2026-11-24, B4 H32 D128 bf16 fwd+bwd: padding 1/8 479 vs cuDNN's 245 (bool) / 344 (our
# gathered seqlen wrapper) TFLOP/s at S=2048; 4 segments 904 vs 247; unmasked a tie with cuDNN
# (389 vs 389 at 2048, 458 vs 479 at 4096), so unmasked calls stay on cuDNN.
MGPU_WINS = {"masked": True, "unmasked": False}


def _tpu(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    return tpu_flash.flash_attention_tpu(
        q, k, v, mask_lib.make_mask(key_mask, segment_ids, kv_segment_ids), scale=scale)


def _gpu(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    return gpu_flash.flash_attention_gpu(
        q, k, v, mask_lib.make_mask(key_mask, segment_ids, kv_segment_ids), scale=scale)


def _mgpu(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    return gpu_mgpu.flash_attention_mgpu(
        q, k, v, mask_lib.make_mask(key_mask, segment_ids, kv_segment_ids), scale=scale)


def mgpu_supported(q, k=None) -> bool:
    """The Mosaic GPU kernel runs here: a Hopper GPU (sm_90), bf16/fp16, head dim 64/128."""
    if jax.default_backend() != "gpu" or q.dtype not in (jnp.bfloat16, jnp.float16):
        return False
    if q.shape[-1] not in (64, 128) or (k is not None and k.dtype != q.dtype):
        return False
    cc = getattr(jax.devices()[0], "compute_capability", "")
    return str(cc).startswith("9.")


def _pallas(q, k, v, **kw):
    """Our Pallas kernel for the backend: Mosaic GPU on Hopper (bf16/fp16, head dim 64/128),
    the Triton-lowered kernel on other GPUs and shapes, the TPU kernel elsewhere (interpret
    mode on CPU)."""
    if jax.default_backend() != "gpu":
        return _tpu(q, k, v, **kw)
    return (_mgpu if mgpu_supported(q, k) else _gpu)(q, k, v, **kw)


def _decode(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    return decode_lib.decode_attention(q, k, v, key_mask, segment_ids=segment_ids,
                                       kv_segment_ids=kv_segment_ids, scale=scale)


def cudnn_attention(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None,
                    scale=None, implementation="cudnn"):
    """jax.nn.dot_product_attention with our masks. q [B,Lq,H,D], k/v [B,Lk,H,D].

    Lengths are padded to a multiple of 64 (cuDNN rejects e.g. 1539). Any key mask becomes
    key_value_seq_lengths (free in cuDNN) after the visible keys of each row are gathered to
    the front (the output does not depend on key order); segments need the boolean mask. Rows with nothing visible -> 0.
    `implementation` is exposed for tests on CPU ('xla').
    """
    common.check_qkv(q, k, v, "cudnn_attention")
    if segment_ids is not None and kv_segment_ids is None:
        kv_segment_ids = segment_ids
    b, lq, h, d = q.shape
    lk = k.shape[1]
    lq_p, lk_p = common.round_up(lq, 64), common.round_up(lk, 64)
    qp, kp, vp = common.pad_seq(q, lq_p), common.pad_seq(k, lk_p), common.pad_seq(v, lk_p)
    km = jnp.ones((b, lk), bool) if key_mask is None else key_mask.astype(bool)
    km = jnp.pad(km, ((0, 0), (0, lk_p - lk)))
    q_len = jnp.full((b,), lq, jnp.int32)
    call = lambda **kw: jax.nn.dot_product_attention(qp, kp, vp, scale=scale,
                                                     implementation=implementation, **kw)

    if segment_ids is None:
        # Attention is invariant to the order of the keys (RoPE is already applied), so move
        # each row's visible keys to the front and let cuDNN's free sequence-length mask do the
        # rest: left padding and holes cost no boolean-mask path.
        if key_mask is not None:
            perm = jnp.argsort(~km, axis=-1, stable=True)
            kp = jnp.take_along_axis(kp, perm[:, :, None, None], axis=1)
            vp = jnp.take_along_axis(vp, perm[:, :, None, None], axis=1)
        out = jax.nn.dot_product_attention(
            qp, kp, vp, scale=scale, implementation=implementation, query_seq_lengths=q_len,
            key_value_seq_lengths=jnp.sum(km, axis=-1, dtype=jnp.int32))
        row_ok = jnp.broadcast_to(jnp.any(km, axis=-1)[:, None], (b, lq_p))
    else:
        qs = common.pad_seq(segment_ids.astype(jnp.int32), lq_p)
        ks = jnp.where(km, jnp.pad(kv_segment_ids.astype(jnp.int32), ((0, 0), (0, lk_p - lk))),
                       mask_lib.MASKED_KEY)
        vis = qs[:, :, None] == ks[:, None, :]
        out = call(mask=vis[:, None])
        row_ok = jnp.any(vis, axis=-1)
    out = jnp.where(row_ok[:, :, None, None], out, 0)
    return out[:, :lq].astype(q.dtype)


def _cudnn(q, k, v, **kw):
    return cudnn_attention(q, k, v, **kw)


def _gpu_best(q, k, v, *, key_mask=None, segment_ids=None, kv_segment_ids=None, scale=None):
    masked = key_mask is not None or segment_ids is not None
    if MGPU_WINS["masked" if masked else "unmasked"] and mgpu_supported(q, k):
        fn = _mgpu
    else:
        fn = _gpu if segment_ids is not None else _cudnn
    return fn(q, k, v, key_mask=key_mask, segment_ids=segment_ids,
              kv_segment_ids=kv_segment_ids, scale=scale)


def auto_impl() -> str:
    """'pallas' on TPU, the faster measured kernel on GPU, 'xla' on CPU."""
    backend = jax.default_backend()
    if backend == "tpu":
        return "pallas"
    if backend == "gpu":
        return GPU_AUTO
    return "xla"


register_attention_impl("pallas", sharded_attention(_pallas))
register_attention_impl("pallas_tpu", sharded_attention(_tpu))
register_attention_impl("pallas_gpu", sharded_attention(_gpu))
register_attention_impl("pallas_decode", sharded_attention(_decode))
register_attention_impl("pallas_mgpu", sharded_attention(_mgpu))
register_attention_impl("cudnn", sharded_attention(_cudnn))
register_attention_impl("gpu_best", sharded_attention(_gpu_best))
register_attention_impl("__auto__", auto_impl)
