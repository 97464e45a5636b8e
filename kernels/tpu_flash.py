"""Flash attention for TPU (Pallas on Mosaic TPU), forward and backward, with mask skipping.

`flash_attention_tpu(q, k, v, mask)`: q [B, Lq, H, D], k/v [B, Lk, H, D] -> [B, Lq, H, D].
Masks follow `mask.AttentionMask`. Sequences are padded to the blocks (multiples of 128);
a per-block table (`mask.block_states`) lets the kernels skip blocks with nothing visible
(no compute, and no copy: the index map re-points a skipped step at the block already loaded)
and drop the mask arithmetic on blocks that are wholly visible. The backward pass is a
custom_vjp that saves the log-sum-exp and runs two kernels (dk/dv over key blocks, dq over
query blocks). On CPU the kernels run in interpret mode.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from mmada_jax.kernels import common
from mmada_jax.kernels import mask as mask_lib

LANES = 128
SUBLANES = 8
NEG = -1e30  # finite "minus infinity": keeps every intermediate finite
NT = (((1,), (1,)), ((), ()))  # contract the last dims: a @ b.T


@dataclasses.dataclass(frozen=True)
class _Cfg:
    heads: int
    head_dim: int
    fused: bool  # layout [B, L, H*D] (D % 128 == 0) instead of [B*H, L, D]
    scale: float
    block_q: int
    block_k: int
    block_causal: Optional[int]
    q_offset: int
    interpret: bool


# ----------------------------------------------------------------------------- layout

def _to3(x, fused):
    b, l, h, d = x.shape
    return x.reshape(b, l, h * d) if fused else x.transpose(0, 2, 1, 3).reshape(b * h, l, d)


def _from3(x, b, h, fused):
    if fused:
        return x.reshape(b, x.shape[1], h, x.shape[2] // h)
    return x.reshape(b, h, x.shape[1], x.shape[2]).transpose(0, 2, 1, 3)


def _seq_spec(cfg: _Cfg, block: int, seq_block):
    """BlockSpec over a [B, L, H*D] / [B*H, L, D] operand; seq_block(ids, refs) -> L block."""
    d, h = cfg.head_dim, cfg.heads
    if cfg.fused:
        return pl.BlockSpec((None, block, d), lambda b, hh, x, y, *r: (b, seq_block(b, x, y, *r), hh))
    return pl.BlockSpec((None, block, d),
                        lambda b, hh, x, y, *r: (b * h + hh, seq_block(b, x, y, *r), 0))


def _row_spec(block: int, seq_block):
    """BlockSpec over a lane-replicated [B, H, L, 128] row statistic (lse, delta)."""
    return pl.BlockSpec((None, None, block, LANES),
                        lambda b, hh, x, y, *r: (b, hh, seq_block(b, x, y, *r), 0))


def _lanes(x, n):
    """(rows, 128) lane-replicated -> (rows, n)."""
    if n == LANES:
        return x
    if n < LANES:
        return x[:, :n]
    return jnp.tile(x, (1, n // LANES))


def _visible(cfg: _Cfg, qid_ref, kid_ref, qi, kj):
    """bool (bq, bk) for query block qi and key block kj."""
    bq, bk = cfg.block_q, cfg.block_k
    qid = _lanes(qid_ref[...], bk)
    kid = kid_ref[...][:1, :]
    vis = qid == kid
    if cfg.block_causal is not None:
        rows = lax.broadcasted_iota(jnp.int32, (bq, bk), 0) + (qi * bq + cfg.q_offset)
        cols = lax.broadcasted_iota(jnp.int32, (bq, bk), 1) + kj * bk
        bc = cfg.block_causal
        vis = jnp.logical_and(vis, lax.div(cols, bc) <= lax.div(rows, bc))
    return vis


def _run_by_state(state, step):
    """Run step(masked) for PARTIAL / FULL blocks; nothing for SKIP."""
    @pl.when(state == mask_lib.FULL)
    def _():
        step(False)

    @pl.when(state == mask_lib.PARTIAL)
    def _():
        step(True)


# ----------------------------------------------------------------------------- forward

def _fwd_kernel(st_ref, fe_ref, q_ref, k_ref, v_ref, qid_ref, kid_ref, o_ref, lse_ref,
                m_sc, l_sc, acc_sc, *, cfg: _Cfg, nq: int, nk: int):
    del fe_ref
    b, qi, kj = pl.program_id(0), pl.program_id(2), pl.program_id(3)
    d, bk = cfg.head_dim, cfg.block_k

    @pl.when(kj == 0)
    def _():
        m_sc[...] = jnp.full(m_sc.shape, NEG, jnp.float32)
        l_sc[...] = jnp.zeros(l_sc.shape, jnp.float32)
        acc_sc[...] = jnp.zeros(acc_sc.shape, jnp.float32)

    def step(masked):
        q, k, v = q_ref[...], k_ref[...], v_ref[...]
        s = lax.dot_general(q, k, NT, preferred_element_type=jnp.float32) * cfg.scale
        if masked:
            vis = _visible(cfg, qid_ref, kid_ref, qi, kj)
            s = jnp.where(vis, s, NEG)
        m_prev, l_prev = m_sc[...], l_sc[...]
        m_new = jnp.maximum(m_prev, jnp.max(s, axis=1, keepdims=True))
        p = jnp.exp(s - _lanes(m_new, bk))
        if masked:
            p = jnp.where(vis, p, 0.0)
        alpha = jnp.exp(m_prev - m_new)
        l_sc[...] = alpha * l_prev + jnp.sum(p, axis=1, keepdims=True)
        m_sc[...] = m_new
        pv = lax.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
        acc_sc[...] = acc_sc[...] * _lanes(alpha, d) + pv

    _run_by_state(st_ref[(b * nq + qi) * nk + kj], step)

    @pl.when(kj == nk - 1)
    def _():
        l = l_sc[...]
        empty = l == 0.0
        inv = 1.0 / jnp.where(empty, 1.0, l)
        o_ref[...] = (acc_sc[...] * _lanes(inv, d)).astype(o_ref.dtype)
        # rows with nothing visible: lse = +big so that exp(s - lse) = 0 in the backward pass
        lse_ref[...] = jnp.where(empty, -NEG, m_sc[...] + jnp.log(jnp.where(empty, 1.0, l)))


def _tables(qid, kid, cfg: _Cfg):
    states = mask_lib.block_states(qid, kid, cfg.block_q, cfg.block_k,
                                   block_causal=cfg.block_causal, q_offset=cfg.q_offset)
    return states


def _replicated_ids(qid, kid):
    """q ids [B, Lq, 128] and kv ids [B, 8, Lk] in the shapes the TPU tiles want."""
    b, lq = qid.shape
    lk = kid.shape[1]
    return (jnp.broadcast_to(qid[:, :, None], (b, lq, LANES)),
            jnp.broadcast_to(kid[:, None, :], (b, SUBLANES, lk)))


def _forward(q3, k3, v3, qid, kid, cfg: _Cfg):
    """-> (o3 like q3, lse f32 [B, H, Lq, 128])."""
    b, lq = qid.shape
    lk = kid.shape[1]
    h, d, bq, bk = cfg.heads, cfg.head_dim, cfg.block_q, cfg.block_k
    nq, nk = lq // bq, lk // bk
    states = _tables(qid, kid, cfg)
    fetch = common.fetch_table(states)
    qid_r, kid_r = _replicated_ids(qid, kid)

    def flat(b_, x, y, st, fe):
        return (b_ * nq + x) * nk + y

    q_blk = lambda b_, x, y, st, fe: x
    k_blk = lambda b_, x, y, st, fe: fe[flat(b_, x, y, st, fe)]
    in_specs = [
        _seq_spec(cfg, bq, q_blk),
        _seq_spec(cfg, bk, k_blk),
        _seq_spec(cfg, bk, k_blk),
        pl.BlockSpec((None, bq, LANES), lambda b_, hh, x, y, st, fe: (b_, x, 0)),
        pl.BlockSpec((None, SUBLANES, bk), lambda b_, hh, x, y, st, fe: (b_, 0, k_blk(b_, x, y, st, fe))),
    ]
    out_specs = [_seq_spec(cfg, bq, q_blk), _row_spec(bq, q_blk)]
    grid_spec = pltpu.PrefetchScalarGridSpec(
        num_scalar_prefetch=2, grid=(b, h, nq, nk), in_specs=in_specs, out_specs=out_specs,
        scratch_shapes=[pltpu.VMEM((bq, LANES), jnp.float32), pltpu.VMEM((bq, LANES), jnp.float32),
                        pltpu.VMEM((bq, d), jnp.float32)])
    o3, lse = pl.pallas_call(
        functools.partial(_fwd_kernel, cfg=cfg, nq=nq, nk=nk),
        grid_spec=grid_spec,
        out_shape=[jax.ShapeDtypeStruct(q3.shape, q3.dtype),
                   jax.ShapeDtypeStruct((b, h, lq, LANES), jnp.float32)],
        compiler_params=pltpu.CompilerParams(
            dimension_semantics=("parallel", "parallel", "parallel", "arbitrary")),
        interpret=cfg.interpret,
        name="mmada_flash_fwd",
    )(states.reshape(-1), fetch.reshape(-1), q3, k3, v3, qid_r, kid_r)
    return o3, lse


# ----------------------------------------------------------------------------- backward

def _dkv_kernel(st_ref, fe_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref,
                dk_ref, dv_ref, dk_sc, dv_sc, *, cfg: _Cfg, nq: int, nk: int):
    del fe_ref
    b, kj, qi = pl.program_id(0), pl.program_id(2), pl.program_id(3)
    bk = cfg.block_k

    @pl.when(qi == 0)
    def _():
        dk_sc[...] = jnp.zeros(dk_sc.shape, jnp.float32)
        dv_sc[...] = jnp.zeros(dv_sc.shape, jnp.float32)

    def step(masked):
        q, k, v, do = q_ref[...], k_ref[...], v_ref[...], do_ref[...]
        s = lax.dot_general(q, k, NT, preferred_element_type=jnp.float32) * cfg.scale
        p = jnp.exp(s - _lanes(lse_ref[...], bk))
        if masked:
            p = jnp.where(_visible(cfg, qid_ref, kid_ref, qi, kj), p, 0.0)
        dv_sc[...] += lax.dot(p.T.astype(do.dtype), do, preferred_element_type=jnp.float32)
        dp = lax.dot_general(do, v, NT, preferred_element_type=jnp.float32)
        ds = p * (dp - _lanes(dl_ref[...], bk)) * cfg.scale
        dk_sc[...] += lax.dot(ds.T.astype(q.dtype), q, preferred_element_type=jnp.float32)

    _run_by_state(st_ref[(b * nk + kj) * nq + qi], step)

    @pl.when(qi == nq - 1)
    def _():
        dk_ref[...] = dk_sc[...].astype(dk_ref.dtype)
        dv_ref[...] = dv_sc[...].astype(dv_ref.dtype)


def _dq_kernel(st_ref, fe_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref,
               dq_ref, dq_sc, *, cfg: _Cfg, nq: int, nk: int):
    del fe_ref
    b, qi, kj = pl.program_id(0), pl.program_id(2), pl.program_id(3)
    bk = cfg.block_k

    @pl.when(kj == 0)
    def _():
        dq_sc[...] = jnp.zeros(dq_sc.shape, jnp.float32)

    def step(masked):
        q, k, v, do = q_ref[...], k_ref[...], v_ref[...], do_ref[...]
        s = lax.dot_general(q, k, NT, preferred_element_type=jnp.float32) * cfg.scale
        p = jnp.exp(s - _lanes(lse_ref[...], bk))
        if masked:
            p = jnp.where(_visible(cfg, qid_ref, kid_ref, qi, kj), p, 0.0)
        dp = lax.dot_general(do, v, NT, preferred_element_type=jnp.float32)
        ds = p * (dp - _lanes(dl_ref[...], bk)) * cfg.scale
        dq_sc[...] += lax.dot(ds.astype(k.dtype), k, preferred_element_type=jnp.float32)

    _run_by_state(st_ref[(b * nq + qi) * nk + kj], step)

    @pl.when(kj == nk - 1)
    def _():
        dq_ref[...] = dq_sc[...].astype(dq_ref.dtype)


def _backward(q3, k3, v3, qid, kid, o3, lse, do3, cfg: _Cfg):
    b, lq = qid.shape
    lk = kid.shape[1]
    h, d, bq, bk = cfg.heads, cfg.head_dim, cfg.block_q, cfg.block_k
    nq, nk = lq // bq, lk // bk
    delta = jnp.sum(_from3(o3, b, h, cfg.fused).astype(jnp.float32)
                    * _from3(do3, b, h, cfg.fused).astype(jnp.float32), axis=-1)  # [B, Lq, H]
    delta = jnp.broadcast_to(delta.transpose(0, 2, 1)[..., None], (b, h, lq, LANES))
    states = _tables(qid, kid, cfg)                    # [B, nq, nk]
    qid_r, kid_r = _replicated_ids(qid, kid)
    params = pltpu.CompilerParams(
        dimension_semantics=("parallel", "parallel", "parallel", "arbitrary"))

    # dk, dv: grid over (B, H, key block, query block); skipped query blocks are not loaded.
    states_t = states.transpose(0, 2, 1)               # [B, nk, nq]
    fetch_t = common.fetch_table(states_t)
    q_f = lambda b_, kj, qi, st, fe: fe[(b_ * nk + kj) * nq + qi]
    k_s = lambda b_, kj, qi, st, fe: kj
    in_specs = [
        _seq_spec(cfg, bq, q_f), _seq_spec(cfg, bk, k_s), _seq_spec(cfg, bk, k_s),
        _seq_spec(cfg, bq, q_f), _row_spec(bq, q_f), _row_spec(bq, q_f),
        pl.BlockSpec((None, bq, LANES), lambda b_, hh, x, y, st, fe: (b_, q_f(b_, x, y, st, fe), 0)),
        pl.BlockSpec((None, SUBLANES, bk), lambda b_, hh, x, y, st, fe: (b_, 0, x)),
    ]
    dk3, dv3 = pl.pallas_call(
        functools.partial(_dkv_kernel, cfg=cfg, nq=nq, nk=nk),
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2, grid=(b, h, nk, nq), in_specs=in_specs,
            out_specs=[_seq_spec(cfg, bk, k_s), _seq_spec(cfg, bk, k_s)],
            scratch_shapes=[pltpu.VMEM((bk, d), jnp.float32), pltpu.VMEM((bk, d), jnp.float32)]),
        out_shape=[jax.ShapeDtypeStruct(k3.shape, k3.dtype),
                   jax.ShapeDtypeStruct(v3.shape, v3.dtype)],
        compiler_params=params, interpret=cfg.interpret, name="mmada_flash_dkv",
    )(states_t.reshape(-1), fetch_t.reshape(-1), q3, k3, v3, do3, lse, delta, qid_r, kid_r)

    # dq: grid over (B, H, query block, key block).
    fetch = common.fetch_table(states)
    q_s = lambda b_, qi, kj, st, fe: qi
    k_f = lambda b_, qi, kj, st, fe: fe[(b_ * nq + qi) * nk + kj]
    in_specs = [
        _seq_spec(cfg, bq, q_s), _seq_spec(cfg, bk, k_f), _seq_spec(cfg, bk, k_f),
        _seq_spec(cfg, bq, q_s), _row_spec(bq, q_s), _row_spec(bq, q_s),
        pl.BlockSpec((None, bq, LANES), lambda b_, hh, x, y, st, fe: (b_, x, 0)),
        pl.BlockSpec((None, SUBLANES, bk), lambda b_, hh, x, y, st, fe: (b_, 0, k_f(b_, x, y, st, fe))),
    ]
    dq3 = pl.pallas_call(
        functools.partial(_dq_kernel, cfg=cfg, nq=nq, nk=nk),
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2, grid=(b, h, nq, nk), in_specs=in_specs,
            out_specs=_seq_spec(cfg, bq, q_s),
            scratch_shapes=[pltpu.VMEM((bq, d), jnp.float32)]),
        out_shape=jax.ShapeDtypeStruct(q3.shape, q3.dtype),
        compiler_params=params, interpret=cfg.interpret, name="mmada_flash_dq",
    )(states.reshape(-1), fetch.reshape(-1), q3, k3, v3, do3, lse, delta, qid_r, kid_r)
    return dq3, dk3, dv3


# ----------------------------------------------------------------------------- custom_vjp

_flash = common.flash_with_vjp(_forward, _backward)


# ----------------------------------------------------------------------------- public API

def _prepare(q, k, v, mask, scale, block_q, block_k, interpret):
    common.check_qkv(q, k, v, "flash_attention_tpu")
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq = block_q or min(512, common.round_up(lq, LANES))
    bk = block_k or min(512, common.round_up(lk, LANES))
    if bq % SUBLANES or bk % LANES:
        raise ValueError(f"flash_attention_tpu: block_q={bq} must be a multiple of 8 (128 for "
                         f"training shapes) and block_k={bk} a multiple of 128")
    mask = mask if mask is not None else mask_lib.AttentionMask()
    cfg = _Cfg(heads=h, head_dim=d, fused=(d % LANES == 0 or h == 1),
               scale=float(d ** -0.5 if scale is None else scale), block_q=bq, block_k=bk,
               block_causal=mask.block_causal, q_offset=mask.q_offset,
               interpret=common.use_interpret(interpret))
    lq_p, lk_p = common.round_up(lq, bq), common.round_up(lk, bk)
    qid, kid = mask_lib.pad_ids(*mask_lib.canonical_ids(mask, b, lq, lk), lq_p, lk_p)
    q3 = _to3(common.pad_seq(q, lq_p), cfg.fused)
    k3 = _to3(common.pad_seq(k, lk_p), cfg.fused)
    v3 = _to3(common.pad_seq(v, lk_p), cfg.fused)
    return q3, k3, v3, qid, kid, cfg


def flash_attention_tpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, *, scale=None,
                        block_q: Optional[int] = None, block_k: Optional[int] = None,
                        interpret: Optional[bool] = None):
    """Masked flash attention. q [B,Lq,H,D], k/v [B,Lk,H,D] -> [B,Lq,H,D] (q's dtype).

    block_q / block_k: multiples of 128 (default min(512, L rounded up to 128)); block_q may be
    any multiple of 8 for short query blocks (decode).
    interpret: None = automatic (interpret mode on CPU).
    """
    q3, k3, v3, qid, kid, cfg = _prepare(q, k, v, mask, scale, block_q, block_k, interpret)
    o3 = _flash(q3, k3, v3, qid, kid, cfg)
    return _from3(o3, q.shape[0], cfg.heads, cfg.fused)[:, :q.shape[1]]


def flash_forward_tpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, *, scale=None,
                      block_q=None, block_k=None, interpret=None):
    """Forward only, also returning the log-sum-exp: (out [B,Lq,H,D], lse f32 [B,Lq,H]).

    lse is a large positive number on rows with nothing visible (their output is zero).
    """
    q3, k3, v3, qid, kid, cfg = _prepare(q, k, v, mask, scale, block_q, block_k, interpret)
    o3, lse = _forward(q3, k3, v3, qid, kid, cfg)
    lq = q.shape[1]
    out = _from3(o3, q.shape[0], cfg.heads, cfg.fused)[:, :lq]
    return out, lse[:, :, :lq, 0].transpose(0, 2, 1)
