"""Flash attention for NVIDIA GPUs (Pallas, Triton lowering), forward and backward, masked.

`flash_attention_gpu(q, k, v, mask)`: q [B, Lq, H, D], k/v [B, Lk, H, D] -> [B, Lq, H, D],
in the model's layout (no transposes). Each program owns one (batch, head, block) and loops
only over the blocks a per-row table lists: wholly visible blocks first (no mask arithmetic),
then partially visible ones; blocks with nothing visible are never visited. Softmax runs in
base 2 (exp2) with the log-sum-exp saved for the custom_vjp backward (a dk/dv kernel over key
blocks and a dq kernel over query blocks). On CPU the kernels run in interpret mode.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from mmada_jax.kernels import common
from mmada_jax.kernels import mask as mask_lib

LOG2E = math.log2(math.e)
BIG = 1e30  # log-sum-exp of rows with nothing visible: exp2(s - BIG) = 0


@dataclasses.dataclass(frozen=True)
class GpuConfig:
    """Block sizes (powers of two, >= 16) and Triton launch parameters."""
    block_q: int = 128
    block_k: int = 64
    block_q_bwd: int = 64
    block_k_bwd: int = 64
    num_warps: int = 4
    num_stages: int = 3
    num_warps_bwd: int = 4
    num_stages_bwd: int = 2

    def validate(self):
        for name in ("block_q", "block_k", "block_q_bwd", "block_k_bwd"):
            x = getattr(self, name)
            if x < 16 or x & (x - 1):
                raise ValueError(f"GpuConfig.{name}={x} must be a power of two >= 16")


@dataclasses.dataclass(frozen=True)
class _Cfg:
    tune: GpuConfig
    scale: float
    block_causal: Optional[int]
    q_offset: int
    interpret: bool


def _visible(cfg: _Cfg, qid, kid, q_start, k_start, bq, bk):
    vis = qid[:, None] == kid[None, :]
    if cfg.block_causal is not None:
        rows = q_start + cfg.q_offset + jnp.arange(bq, dtype=jnp.int32)
        cols = k_start + jnp.arange(bk, dtype=jnp.int32)
        bc = cfg.block_causal
        vis = vis & (lax.div(cols, bc)[None, :] <= lax.div(rows, bc)[:, None])
    return vis


# ----------------------------------------------------------------------------- forward

def _fwd_kernel(q_ref, k_ref, v_ref, qid_ref, kid_ref, tbl_ref, o_ref, lse_ref, *, cfg: _Cfg):
    bq, bk = cfg.tune.block_q, cfg.tune.block_k
    q_start = pl.program_id(2) * bq
    q = q_ref[...]
    qid = qid_ref[...]
    qk_scale = cfg.scale * LOG2E
    n_full, n_part = tbl_ref[0], tbl_ref[1]

    def body(t, carry, masked):
        acc, m, l = carry
        k_start = pl.multiple_of(tbl_ref[2 + t] * bk, bk)
        k = k_ref[pl.ds(k_start, bk), :]
        s = plgpu.dot(q, k.T) * qk_scale
        if masked:
            vis = _visible(cfg, qid, kid_ref[pl.ds(k_start, bk)], q_start, k_start, bq, bk)
            s = jnp.where(vis, s, -jnp.inf)
        m_new = jnp.maximum(m, jnp.max(s, axis=-1))
        m_safe = jnp.where(m_new == -jnp.inf, 0.0, m_new) if masked else m_new
        p = jnp.exp2(s - m_safe[:, None])
        alpha = jnp.exp2(m - m_safe)
        l = alpha * l + jnp.sum(p, axis=-1)
        v = v_ref[pl.ds(k_start, bk), :]
        acc = acc * alpha[:, None] + plgpu.dot(p.astype(v.dtype), v)
        return acc, m_new, l

    d = q.shape[-1]
    carry = (jnp.zeros((bq, d), jnp.float32), jnp.full((bq,), -jnp.inf, jnp.float32),
             jnp.zeros((bq,), jnp.float32))
    carry = lax.fori_loop(0, n_full, functools.partial(body, masked=False), carry)
    carry = lax.fori_loop(n_full, n_full + n_part, functools.partial(body, masked=True), carry)
    acc, m, l = carry
    empty = l == 0.0
    o_ref[...] = (acc / jnp.where(empty, 1.0, l)[:, None]).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(empty, BIG, m + jnp.log2(jnp.where(empty, 1.0, l)))


def _forward(q, k, v, qid, kid, cfg: _Cfg):
    """Padded q [B,Lq,H,D], k/v [B,Lk,H,D] -> (o like q, lse2 f32 [B,H,Lq] in base 2)."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq, bk = cfg.tune.block_q, cfg.tune.block_k
    nq, nk = lq // bq, lk // bk
    tbl = common.block_table(mask_lib.block_states(qid, kid, bq, bk, block_causal=cfg.block_causal,
                                            q_offset=cfg.q_offset))
    in_specs = [
        pl.BlockSpec((None, bq, None, d), lambda bb, hh, i: (bb, i, hh, 0)),
        pl.BlockSpec((None, lk, None, d), lambda bb, hh, i: (bb, 0, hh, 0)),
        pl.BlockSpec((None, lk, None, d), lambda bb, hh, i: (bb, 0, hh, 0)),
        pl.BlockSpec((None, bq), lambda bb, hh, i: (bb, i)),
        pl.BlockSpec((None, lk), lambda bb, hh, i: (bb, 0)),
        pl.BlockSpec((None, None, nk + 2), lambda bb, hh, i: (bb, i, 0)),
    ]
    out_specs = [pl.BlockSpec((None, bq, None, d), lambda bb, hh, i: (bb, i, hh, 0)),
                 pl.BlockSpec((None, None, bq), lambda bb, hh, i: (bb, hh, i))]
    return pl.pallas_call(
        functools.partial(_fwd_kernel, cfg=cfg),
        grid=(b, h, nq), in_specs=in_specs, out_specs=out_specs,
        out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                   jax.ShapeDtypeStruct((b, h, lq), jnp.float32)],
        compiler_params=plgpu.CompilerParams(num_warps=cfg.tune.num_warps,
                                             num_stages=cfg.tune.num_stages),
        interpret=cfg.interpret, name="mmada_gpu_flash_fwd",
    )(q, k, v, qid, kid, tbl)


# ----------------------------------------------------------------------------- backward

def _dkv_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref, tbl_ref,
                dk_ref, dv_ref, *, cfg: _Cfg):
    bq, bk = cfg.tune.block_q_bwd, cfg.tune.block_k_bwd
    k_start = pl.program_id(2) * bk
    k, v, kid = k_ref[...], v_ref[...], kid_ref[...]
    qk_scale = cfg.scale * LOG2E
    n_full, n_part = tbl_ref[0], tbl_ref[1]

    def body(t, carry, masked):
        dk, dv = carry
        q_start = pl.multiple_of(tbl_ref[2 + t] * bq, bq)
        q = q_ref[pl.ds(q_start, bq), :]
        do = do_ref[pl.ds(q_start, bq), :]
        s = plgpu.dot(q, k.T) * qk_scale
        p = jnp.exp2(s - lse_ref[pl.ds(q_start, bq)][:, None])
        if masked:
            vis = _visible(cfg, qid_ref[pl.ds(q_start, bq)], kid, q_start, k_start, bq, bk)
            p = jnp.where(vis, p, 0.0)
        dv = dv + plgpu.dot(p.astype(do.dtype).T, do)
        dp = plgpu.dot(do, v.T)
        ds = p * (dp - dl_ref[pl.ds(q_start, bq)][:, None])
        dk = dk + plgpu.dot(ds.astype(q.dtype).T, q)
        return dk, dv

    d = k.shape[-1]
    carry = (jnp.zeros((bk, d), jnp.float32), jnp.zeros((bk, d), jnp.float32))
    carry = lax.fori_loop(0, n_full, functools.partial(body, masked=False), carry)
    dk, dv = lax.fori_loop(n_full, n_full + n_part, functools.partial(body, masked=True), carry)
    dk_ref[...] = (dk * cfg.scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def _dq_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref, tbl_ref,
               dq_ref, *, cfg: _Cfg):
    bq, bk = cfg.tune.block_q_bwd, cfg.tune.block_k_bwd
    q_start = pl.program_id(2) * bq
    q, do, qid = q_ref[...], do_ref[...], qid_ref[...]
    lse, delta = lse_ref[...], dl_ref[...]
    qk_scale = cfg.scale * LOG2E
    n_full, n_part = tbl_ref[0], tbl_ref[1]

    def body(t, dq, masked):
        k_start = pl.multiple_of(tbl_ref[2 + t] * bk, bk)
        k = k_ref[pl.ds(k_start, bk), :]
        v = v_ref[pl.ds(k_start, bk), :]
        s = plgpu.dot(q, k.T) * qk_scale
        p = jnp.exp2(s - lse[:, None])
        if masked:
            vis = _visible(cfg, qid, kid_ref[pl.ds(k_start, bk)], q_start, k_start, bq, bk)
            p = jnp.where(vis, p, 0.0)
        dp = plgpu.dot(do, v.T)
        ds = p * (dp - delta[:, None])
        return dq + plgpu.dot(ds.astype(k.dtype), k)

    dq = jnp.zeros(q.shape, jnp.float32)
    dq = lax.fori_loop(0, n_full, functools.partial(body, masked=False), dq)
    dq = lax.fori_loop(n_full, n_full + n_part, functools.partial(body, masked=True), dq)
    dq_ref[...] = (dq * cfg.scale).astype(dq_ref.dtype)


def _backward(q, k, v, qid, kid, o, lse, do, cfg: _Cfg):
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq, bk = cfg.tune.block_q_bwd, cfg.tune.block_k_bwd
    nq, nk = lq // bq, lk // bk
    delta = jnp.einsum("blhd,blhd->bhl", o.astype(jnp.float32), do.astype(jnp.float32))
    states = mask_lib.block_states(qid, kid, bq, bk, block_causal=cfg.block_causal,
                                   q_offset=cfg.q_offset)
    params = plgpu.CompilerParams(num_warps=cfg.tune.num_warps_bwd,
                                  num_stages=cfg.tune.num_stages_bwd)
    full_q = pl.BlockSpec((None, lq, None, d), lambda bb, hh, j: (bb, 0, hh, 0))
    full_row = pl.BlockSpec((None, None, lq), lambda bb, hh, j: (bb, hh, 0))
    blk_k = pl.BlockSpec((None, bk, None, d), lambda bb, hh, j: (bb, j, hh, 0))
    dk, dv = pl.pallas_call(
        functools.partial(_dkv_kernel, cfg=cfg),
        grid=(b, h, nk),
        in_specs=[full_q, blk_k, blk_k, full_q, full_row, full_row,
                  pl.BlockSpec((None, lq), lambda bb, hh, j: (bb, 0)),
                  pl.BlockSpec((None, bk), lambda bb, hh, j: (bb, j)),
                  pl.BlockSpec((None, None, nq + 2), lambda bb, hh, j: (bb, j, 0))],
        out_specs=[blk_k, blk_k],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
        compiler_params=params, interpret=cfg.interpret, name="mmada_gpu_flash_dkv",
    )(q, k, v, do, lse, delta, qid, kid, common.block_table(states.transpose(0, 2, 1)))

    blk_q = pl.BlockSpec((None, bq, None, d), lambda bb, hh, i: (bb, i, hh, 0))
    full_k = pl.BlockSpec((None, lk, None, d), lambda bb, hh, i: (bb, 0, hh, 0))
    blk_row = pl.BlockSpec((None, None, bq), lambda bb, hh, i: (bb, hh, i))
    dq = pl.pallas_call(
        functools.partial(_dq_kernel, cfg=cfg),
        grid=(b, h, nq),
        in_specs=[blk_q, full_k, full_k, blk_q, blk_row, blk_row,
                  pl.BlockSpec((None, bq), lambda bb, hh, i: (bb, i)),
                  pl.BlockSpec((None, lk), lambda bb, hh, i: (bb, 0)),
                  pl.BlockSpec((None, None, nk + 2), lambda bb, hh, i: (bb, i, 0))],
        out_specs=blk_q,
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=params, interpret=cfg.interpret, name="mmada_gpu_flash_dq",
    )(q, k, v, do, lse, delta, qid, kid, common.block_table(states))
    return dq, dk, dv


# ----------------------------------------------------------------------------- custom_vjp

_flash = common.flash_with_vjp(_forward, _backward)


# ----------------------------------------------------------------------------- public API

def _prepare(q, k, v, mask, scale, tune, interpret):
    common.check_qkv(q, k, v, "flash_attention_gpu")
    tune = tune or GpuConfig()
    tune.validate()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    if d < 16 or d & (d - 1):
        raise ValueError(f"flash_attention_gpu: head dim {d} must be a power of two >= 16")
    mask = mask if mask is not None else mask_lib.AttentionMask()
    cfg = _Cfg(tune=tune, scale=float(d ** -0.5 if scale is None else scale),
               block_causal=mask.block_causal, q_offset=mask.q_offset,
               interpret=common.use_interpret(interpret))
    lq_p = common.round_up(lq, max(tune.block_q, tune.block_q_bwd))
    lk_p = common.round_up(lk, max(tune.block_k, tune.block_k_bwd))
    qid, kid = mask_lib.pad_ids(*mask_lib.canonical_ids(mask, b, lq, lk), lq_p, lk_p)
    return (common.pad_seq(q, lq_p), common.pad_seq(k, lk_p), common.pad_seq(v, lk_p),
            qid, kid, cfg)


def flash_attention_gpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, *, scale=None,
                        config: Optional[GpuConfig] = None, interpret: Optional[bool] = None):
    """Masked flash attention. q [B,Lq,H,D], k/v [B,Lk,H,D] -> [B,Lq,H,D] (q's dtype)."""
    qp, kp, vp, qid, kid, cfg = _prepare(q, k, v, mask, scale, config, interpret)
    return _flash(qp, kp, vp, qid, kid, cfg)[:, :q.shape[1]]


def flash_forward_gpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, *, scale=None,
                      config: Optional[GpuConfig] = None, interpret: Optional[bool] = None):
    """Forward only: (out [B,Lq,H,D], lse f32 [B,Lq,H] natural log; large on empty rows)."""
    qp, kp, vp, qid, kid, cfg = _prepare(q, k, v, mask, scale, config, interpret)
    o, lse2 = _forward(qp, kp, vp, qid, kid, cfg)
    lq = q.shape[1]
    return o[:, :lq], (lse2[:, :, :lq] / LOG2E).transpose(0, 2, 1)
