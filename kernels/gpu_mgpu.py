"""Flash attention for Hopper GPUs in Pallas Mosaic GPU (wgmma + TMA), masked, fwd and bwd.

`flash_attention_mgpu(q, k, v, mask)`: q [B, Lq, H, D], k/v [B, Lk, H, D] -> [B, Lq, H, D]
(bf16 or fp16, D in {64, 128}), in the model's layout.

Every kernel is warp specialized: one memory warpgroup streams the blocks of the other operand
through a ring of shared-memory slots with TMA copies, and two compute warpgroups (each owning
`block` rows of the CTA's tile) run the wgmma matmuls and the softmax in registers. Which
blocks are streamed comes from a per-(batch, tile) table built from `mask.block_states`:
(#full, #partial, full block ids..., partial block ids...). Both sides read the same trip count
from that table, so blocks with nothing visible are never loaded or computed, and full blocks
skip the elementwise mask; partial blocks compare the canonical ids (q ids in the wgmma row
layout, kv ids in the column layout, loaded straight from global memory).

Softmax runs in base 2 with a finite fill value for masked scores, so no inf arithmetic
appears: a row with no visible key ends with its running max at the fill value, outputs zeros,
and saves a huge log-sum-exp that makes its probabilities exactly 0 in the backward.
The custom_vjp backward has a dq kernel (streams K/V blocks per query tile) and a dk/dv kernel
(streams Q/dO/lse/delta blocks per key tile, from the transposed block table).

On CPU the kernels run in Mosaic GPU interpret mode (slow, for tests).
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

from mmada_jax.kernels import common
from mmada_jax.kernels import mask as mask_lib

LOG2E = math.log2(math.e)
NEG = -1e30      # fill value of masked scores (base-2 domain); running max starts here
EMPTY = -1e29    # a running max below this means the row saw no visible key
BIG = 1e30       # log-sum-exp saved for empty rows: exp2(s - BIG) = 0


@dataclasses.dataclass(frozen=True)
class MgpuConfig:
    """Tuning of the Mosaic GPU kernels.

    block_q: query rows per compute warpgroup in the forward (a CTA holds 2 * block_q rows).
    block_kv: keys per streamed block in the forward.
    max_concurrent_steps: shared-memory ring depth (blocks in flight) for every kernel.
    block_q_dq / block_kv_dq: dq kernel (rows per compute warpgroup / streamed key block).
    block_q_dkv / block_kv_dkv: dk/dv kernel (streamed query block / keys per warpgroup).
    compute_wgs_bwd: compute warpgroups per CTA in the backward kernels (1 or 2).
    """
    block_q: int = 64
    block_kv: int = 128
    max_concurrent_steps: int = 2
    block_q_dq: int = 64
    block_kv_dq: int = 128
    block_q_dkv: int = 64
    block_kv_dkv: int = 64
    compute_wgs_bwd: int = 2

    def validate(self):
        for name in ("block_q", "block_kv", "block_q_dq", "block_kv_dq", "block_q_dkv",
                     "block_kv_dkv"):
            x = getattr(self, name)
            if not isinstance(x, int) or x < 64 or x % 64 or x > 256:
                raise ValueError(f"MgpuConfig.{name}={x!r} must be 64, 128, 192 or 256 "
                                 "(wgmma tiles are 64 rows)")
        if self.max_concurrent_steps < 2:
            raise ValueError(f"MgpuConfig.max_concurrent_steps={self.max_concurrent_steps} "
                             "must be >= 2")
        if self.compute_wgs_bwd not in (1, 2):
            raise ValueError(f"MgpuConfig.compute_wgs_bwd={self.compute_wgs_bwd} must be 1 or 2")
        return self


@dataclasses.dataclass(frozen=True)
class _Cfg:
    tune: MgpuConfig
    scale: float
    interpret: bool


def _plgpu():
    from jax.experimental.pallas import mosaic_gpu as plgpu  # lazy: CPU-only imports stay cheap
    return plgpu


def _smem_transforms(plgpu, dtype):
    """Tiling + 128-byte swizzle for [rows, D] tiles of 16-bit data (wgmma operands)."""
    return (plgpu.TilingTransform((8, 128 // jnp.dtype(dtype).itemsize)),
            plgpu.SwizzleTransform(128))


def _params(plgpu, cfg: _Cfg):
    return plgpu.CompilerParams(approx_math=True)


def _interpret(plgpu, cfg: _Cfg):
    return plgpu.InterpretGPUParams() if cfg.interpret else None


MEMORY_REGS = 40  # registers per thread of the TMA-issuing warpgroup


def _compute_regs(nwg: int) -> int:
    """Registers per thread for each compute warpgroup: the SM's 64K registers (512 per
    thread slot of a 128-thread warpgroup) less the memory warpgroup's, multiple of 8."""
    return min(256, (512 - MEMORY_REGS) // nwg // 8 * 8)


def _bcast(x, shape, dim):
    return lax.broadcast_in_dim(x, shape, [dim])


def _mm(plgpu, cfg: _Cfg, ops, inside=None):
    """Matmuls on the tensor cores: ops = [(acc, a, b_ref, transpose_b), ...] -> [acc + a @ b].

    `acc` is a float32 register array in the WGMMA layout, or a shape for a fresh zero
    accumulator; `a` is an SMEM ref or a 16-bit register array; `b_ref` an SMEM ref.
    `inside()` runs after the wgmmas are issued and before they are awaited (overlap).
    Interpret mode cannot run wgmma with register operands or pl.run_state, so there the
    same math is done with jnp.dot on the loaded tiles.
    """
    bmat = lambda b, bt: b.transpose((1, 0)) if bt else b
    if cfg.interpret:
        outs = []
        for acc, a, b, bt in ops:
            av = a if isinstance(a, jax.Array) else a[...]
            bv = b[...].T if bt else b[...]
            r = jnp.dot(av, bv, preferred_element_type=jnp.float32)
            outs.append(r if isinstance(acc, tuple) else acc + r)
        if inside is not None:
            inside()
        return outs

    if len(ops) == 1 and isinstance(ops[0][0], tuple):
        _, a, b, bt = ops[0]

        def fresh(acc_ref):
            plgpu.wgmma(acc_ref, a, bmat(b, bt))
            if inside is not None:
                inside()
            return acc_ref[...]

        return [pl.run_scoped(fresh, plgpu.ACC(ops[0][0], jnp.float32))]

    def body(refs):
        for ref, (_, a, b, bt) in zip(refs, ops):
            plgpu.wgmma(ref, a, bmat(b, bt))
        if inside is not None:
            inside()

    inits = tuple(plgpu.ACC.init(plgpu.layout_cast(jnp.zeros(acc, jnp.float32),
                                                    plgpu.Layout.WGMMA)
                                 if isinstance(acc, tuple) else acc) for acc, *_ in ops)
    return list(pl.run_state(body)(inits))


# ----------------------------------------------------------------------------- forward

def _ring_producer(plgpu, streams, n_tot, steps: int):
    """The memory warpgroup's side of a `steps`-slot ring buffer, for blocks 0..n_tot-1.

    streams: ((load, free), ...): load(i, slot) issues block i's copies into `slot`; `free` is
    the barrier array on which the consumers release a slot. The first `steps` blocks go out at
    once; block i + steps waits for slot i % steps to be released (stream by stream); the last
    releases are observed too, so no barrier phase is left unobserved."""
    for j in range(steps):
        @pl.when(j < n_tot)
        def _(j=j):
            for load, _free in streams:
                load(j, j)

    @pl.loop(0, jnp.maximum(n_tot - steps, 0))
    def _(i):
        slot = lax.rem(i, steps)
        for load, free in streams:
            plgpu.barrier_wait(free.at[slot])
            load(i + steps, slot)

    @pl.loop(jnp.maximum(n_tot - steps, 0), n_tot)
    def _(i):
        for _load, free in streams:
            plgpu.barrier_wait(free.at[lax.rem(i, steps)])


def _forward(q, k, v, qid, kid, cfg: _Cfg):
    """Padded q [B,Lq,H,D], k/v [B,Lk,H,D] -> (o like q, lse2 f32 [B,H,Lq], base 2)."""
    plgpu = _plgpu()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    t = cfg.tune
    bq, bk, nwg = t.block_q, t.block_kv, 2
    nk = lk // bk
    steps = min(t.max_concurrent_steps, nk)
    dtype = q.dtype
    c = cfg.scale * LOG2E
    tbl = common.block_table(mask_lib.block_states(qid, kid, nwg * bq, bk))
    ROW = plgpu.Layout.WGMMA.reduce(1)
    COL = plgpu.Layout.WGMMA.reduce(0)

    def body(q_ref, k_ref, v_ref, qid_ref, kid_ref, tbl_ref, o_ref, lse_ref,
             qo_smem2, k_smem, v_smem, lse_smem2, q_bar, k_bar, v_bar, k_free, v_free, sched):
        bi = lax.axis_index("batch")
        hi = lax.axis_index("heads")
        qt = lax.axis_index("q_seq")
        wg = lax.axis_index("wg")
        n_full = tbl_ref[bi, qt, 0]
        n_tot = n_full + tbl_ref[bi, qt, 1]

        def sched_sync():
            plgpu.barrier_arrive(sched)
            plgpu.barrier_wait(sched)

        @pl.when(wg < nwg)
        def _compute():
            plgpu.set_max_registers(_compute_regs(nwg), action="increase")
            qo = qo_smem2.at[wg]
            q0 = qt * (nwg * bq) + wg * bq
            plgpu.copy_gmem_to_smem(q_ref.at[bi, pl.ds(q0, bq), hi], qo, q_bar.at[wg])
            qid_row = plgpu.load(qid_ref.at[bi, pl.ds(q0, bq)], layout=ROW, optimized=False)
            plgpu.barrier_wait(q_bar.at[wg])
            m = plgpu.layout_cast(jnp.full((bq,), NEG, jnp.float32), ROW)
            l = plgpu.layout_cast(jnp.zeros((bq,), jnp.float32), ROW)
            acc = plgpu.layout_cast(jnp.zeros((bq, d), jnp.float32), plgpu.Layout.WGMMA)

            @pl.when(n_tot > 0)
            def _():
                plgpu.barrier_wait(k_bar.at[0])

            pl.when(wg == 1)(sched_sync)  # offset the two warpgroups by half a step

            def step(i, carry, masked):
                acc, m, l = carry
                slot = lax.rem(i, steps)

                (s,) = _mm(plgpu, cfg, [((bq, bk), qo, k_smem.at[slot], True)], sched_sync)
                plgpu.barrier_arrive(k_free.at[slot])
                if masked:
                    kb = tbl_ref[bi, qt, 2 + i]
                    kid_col = plgpu.load(kid_ref.at[bi, pl.ds(kb * bk, bk)], layout=COL, optimized=False)
                    vis = _bcast(qid_row, (bq, bk), 0) == _bcast(kid_col, (bq, bk), 1)
                    s = jnp.where(vis, s * c, NEG)
                    m_new = jnp.maximum(m, s.max(axis=1))
                    p = jnp.exp2(s - _bcast(m_new, s.shape, 0))
                else:
                    m_new = jnp.maximum(m, s.max(axis=1) * c)
                    p = jnp.exp2(s * c - _bcast(m_new, s.shape, 0))
                alpha = jnp.exp2(m - m_new)
                acc = acc * _bcast(alpha, acc.shape, 0)
                l = l * alpha + p.sum(axis=1)
                p16 = p.astype(dtype)
                acc, l, m_new, p16 = lax.optimization_barrier((acc, l, m_new, p16))
                plgpu.barrier_arrive(sched)
                plgpu.barrier_wait(v_bar.at[slot])
                plgpu.barrier_wait(sched)

                def wait_next_k():
                    @pl.when(i + 1 < n_tot)
                    def _():
                        plgpu.barrier_wait(k_bar.at[lax.rem(i + 1, steps)])

                (acc,) = _mm(plgpu, cfg, [(acc, p16, v_smem.at[slot], False)], wait_next_k)
                plgpu.barrier_arrive(v_free.at[slot])
                return acc, m_new, l

            carry = lax.fori_loop(0, n_full, functools.partial(step, masked=False), (acc, m, l))
            acc, m, l = lax.fori_loop(n_full, n_tot, functools.partial(step, masked=True), carry)
            pl.when(wg == 0)(sched_sync)

            empty = m < EMPTY
            inv = jnp.where(empty, 0.0, 1.0 / jnp.where(empty, 1.0, l))
            qo[...] = (acc * _bcast(inv, acc.shape, 0)).astype(dtype)
            lse_smem = lse_smem2.at[wg]
            lse_smem[...] = jnp.where(empty, BIG, m + jnp.log2(jnp.where(empty, 1.0, l)))
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(qo, o_ref.at[bi, pl.ds(q0, bq), hi])
            plgpu.copy_smem_to_gmem(lse_smem, lse_ref.at[bi, hi, pl.ds(q0, bq)])
            plgpu.wait_smem_to_gmem(0)

        @pl.when(wg == nwg)
        def _memory():
            plgpu.set_max_registers(MEMORY_REGS, action="decrease")

            def load_k(i, slot):
                kb = tbl_ref[bi, qt, 2 + i]
                plgpu.copy_gmem_to_smem(k_ref.at[bi, pl.ds(kb * bk, bk), hi], k_smem.at[slot],
                                        k_bar.at[slot])

            def load_v(i, slot):
                kb = tbl_ref[bi, qt, 2 + i]
                plgpu.copy_gmem_to_smem(v_ref.at[bi, pl.ds(kb * bk, bk), hi], v_smem.at[slot],
                                        v_bar.at[slot])

            _ring_producer(plgpu, ((load_k, k_free), (load_v, v_free)), n_tot, steps)

    tr = _smem_transforms(plgpu, dtype)
    scratch = (
        plgpu.SMEM((nwg, bq, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bk, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bk, d), dtype, transforms=tr),
        plgpu.SMEM((nwg, bq), jnp.float32),
        plgpu.Barrier(num_barriers=nwg),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_arrivals=nwg, num_barriers=steps),
        plgpu.Barrier(num_arrivals=nwg, num_barriers=steps),
        plgpu.Barrier(num_arrivals=nwg),
    )
    o, lse = plgpu.kernel(
        body,
        out_type=(jax.ShapeDtypeStruct(q.shape, dtype),
                  jax.ShapeDtypeStruct((b, h, lq), jnp.float32)),
        scratch_types=scratch,
        grid=(h, lq // (nwg * bq), b), grid_names=("heads", "q_seq", "batch"),
        num_threads=nwg + 1, thread_name="wg",
        compiler_params=_params(plgpu, cfg), interpret=_interpret(plgpu, cfg),
    )(q, k, v, qid, kid, tbl)
    return o, lse


# ----------------------------------------------------------------------------- backward

def _dq(q, k, v, do, lse, delta, qid, kid, cfg: _Cfg):
    plgpu = _plgpu()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    t = cfg.tune
    bq, bk, nwg = t.block_q_dq, t.block_kv_dq, t.compute_wgs_bwd
    steps = min(t.max_concurrent_steps, lk // bk)
    dtype = q.dtype
    c = cfg.scale * LOG2E
    tbl = common.block_table(mask_lib.block_states(qid, kid, nwg * bq, bk))
    ROW = plgpu.Layout.WGMMA.reduce(1)
    COL = plgpu.Layout.WGMMA.reduce(0)

    def body(q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref, tbl_ref, dq_ref,
             q_smem2, do_smem2, k_smem, v_smem, q_bar, do_bar, k_bar, v_bar, free):
        bi = lax.axis_index("batch")
        hi = lax.axis_index("heads")
        qt = lax.axis_index("q_seq")
        wg = lax.axis_index("wg")
        n_full = tbl_ref[bi, qt, 0]
        n_tot = n_full + tbl_ref[bi, qt, 1]

        @pl.when(wg < nwg)
        def _compute():
            plgpu.set_max_registers(_compute_regs(nwg), action="increase")
            q_smem, do_smem = q_smem2.at[wg], do_smem2.at[wg]
            q0 = qt * (nwg * bq) + wg * bq
            rows = (bi, pl.ds(q0, bq), hi)
            plgpu.copy_gmem_to_smem(q_ref.at[rows], q_smem, q_bar.at[wg])
            plgpu.copy_gmem_to_smem(do_ref.at[rows], do_smem, do_bar.at[wg])
            lse = plgpu.load(lse_ref.at[bi, hi, pl.ds(q0, bq)], layout=ROW, optimized=False)
            delta = plgpu.load(dl_ref.at[bi, hi, pl.ds(q0, bq)], layout=ROW, optimized=False)
            qid_row = plgpu.load(qid_ref.at[bi, pl.ds(q0, bq)], layout=ROW, optimized=False)
            plgpu.barrier_wait(q_bar.at[wg])
            plgpu.barrier_wait(do_bar.at[wg])
            dq = plgpu.layout_cast(jnp.zeros((bq, d), jnp.float32), plgpu.Layout.WGMMA)

            def step(i, dq, masked):
                slot = lax.rem(i, steps)
                plgpu.barrier_wait(k_bar.at[slot])

                (s,) = _mm(plgpu, cfg, [((bq, bk), q_smem, k_smem.at[slot], True)])
                p = jnp.exp2(s * c - _bcast(lse, s.shape, 0))
                if masked:
                    kb = tbl_ref[bi, qt, 2 + i]
                    kid_col = plgpu.load(kid_ref.at[bi, pl.ds(kb * bk, bk)], layout=COL, optimized=False)
                    vis = _bcast(qid_row, (bq, bk), 0) == _bcast(kid_col, (bq, bk), 1)
                    p = jnp.where(vis, p, 0.0)
                plgpu.barrier_wait(v_bar.at[slot])

                (dp,) = _mm(plgpu, cfg, [((bq, bk), do_smem, v_smem.at[slot], True)])
                ds = p * (dp - _bcast(delta, dp.shape, 0))

                (dq,) = _mm(plgpu, cfg, [(dq, ds.astype(dtype), k_smem.at[slot], False)])
                plgpu.barrier_arrive(free.at[slot])
                return dq

            dq = lax.fori_loop(0, n_full, functools.partial(step, masked=False), dq)
            dq = lax.fori_loop(n_full, n_tot, functools.partial(step, masked=True), dq)
            q_smem[...] = (dq * cfg.scale).astype(dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(q_smem, dq_ref.at[rows])
            plgpu.wait_smem_to_gmem(0)

        @pl.when(wg == nwg)
        def _memory():
            plgpu.set_max_registers(MEMORY_REGS, action="decrease")

            def load(i, slot):
                kb = tbl_ref[bi, qt, 2 + i]
                cols = (bi, pl.ds(kb * bk, bk), hi)
                plgpu.copy_gmem_to_smem(k_ref.at[cols], k_smem.at[slot], k_bar.at[slot])
                plgpu.copy_gmem_to_smem(v_ref.at[cols], v_smem.at[slot], v_bar.at[slot])

            _ring_producer(plgpu, ((load, free),), n_tot, steps)

    tr = _smem_transforms(plgpu, dtype)
    scratch = (
        plgpu.SMEM((nwg, bq, d), dtype, transforms=tr),
        plgpu.SMEM((nwg, bq, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bk, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bk, d), dtype, transforms=tr),
        plgpu.Barrier(num_barriers=nwg),
        plgpu.Barrier(num_barriers=nwg),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_arrivals=nwg, num_barriers=steps),
    )
    return plgpu.kernel(
        body, out_type=jax.ShapeDtypeStruct(q.shape, dtype), scratch_types=scratch,
        grid=(h, lq // (nwg * bq), b), grid_names=("heads", "q_seq", "batch"),
        num_threads=nwg + 1, thread_name="wg",
        compiler_params=_params(plgpu, cfg), interpret=_interpret(plgpu, cfg),
    )(q, k, v, do, lse, delta, qid, kid, tbl)


def _dkv(q, k, v, do, lse, delta, qid, kid, cfg: _Cfg):
    plgpu = _plgpu()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    t = cfg.tune
    bq, bk, nwg = t.block_q_dkv, t.block_kv_dkv, t.compute_wgs_bwd
    steps = min(t.max_concurrent_steps, lq // bq)
    dtype = q.dtype
    c = cfg.scale * LOG2E
    states = mask_lib.block_states(qid, kid, bq, nwg * bk)
    tbl = common.block_table(states.transpose(0, 2, 1))
    ROW = plgpu.Layout.WGMMA.reduce(1)
    COL = plgpu.Layout.WGMMA.reduce(0)

    def body(q_ref, k_ref, v_ref, do_ref, lse_ref, dl_ref, qid_ref, kid_ref, tbl_ref,
             dk_ref, dv_ref, k_smem2, v_smem2, q_smem, do_smem, lse_smem, dl_smem,
             k0_bar, v0_bar, q_bar, do_bar, lse_bar, dl_bar, free):
        bi = lax.axis_index("batch")
        hi = lax.axis_index("heads")
        kt = lax.axis_index("kv_seq")
        wg = lax.axis_index("wg")
        n_full = tbl_ref[bi, kt, 0]
        n_tot = n_full + tbl_ref[bi, kt, 1]

        @pl.when(wg < nwg)
        def _compute():
            plgpu.set_max_registers(_compute_regs(nwg), action="increase")
            k_smem, v_smem = k_smem2.at[wg], v_smem2.at[wg]
            k0 = kt * (nwg * bk) + wg * bk
            rows = (bi, pl.ds(k0, bk), hi)
            plgpu.copy_gmem_to_smem(k_ref.at[rows], k_smem, k0_bar.at[wg])
            plgpu.copy_gmem_to_smem(v_ref.at[rows], v_smem, v0_bar.at[wg])
            kid_row = plgpu.load(kid_ref.at[bi, pl.ds(k0, bk)], layout=ROW, optimized=False)
            plgpu.barrier_wait(k0_bar.at[wg])
            plgpu.barrier_wait(v0_bar.at[wg])
            zero = plgpu.layout_cast(jnp.zeros((bk, d), jnp.float32), plgpu.Layout.WGMMA)

            def step(i, carry, masked):
                dk, dv = carry
                slot = lax.rem(i, steps)
                plgpu.barrier_wait(q_bar.at[slot])

                (sT,) = _mm(plgpu, cfg, [((bk, bq), k_smem, q_smem.at[slot], True)])
                plgpu.barrier_wait(lse_bar.at[slot])
                lse = plgpu.load(lse_smem.at[slot], layout=COL)
                pT = jnp.exp2(sT * c - _bcast(lse, sT.shape, 1))
                if masked:
                    qb = tbl_ref[bi, kt, 2 + i]
                    qid_col = plgpu.load(qid_ref.at[bi, pl.ds(qb * bq, bq)], layout=COL, optimized=False)
                    vis = _bcast(kid_row, (bk, bq), 0) == _bcast(qid_col, (bk, bq), 1)
                    pT = jnp.where(vis, pT, 0.0)
                plgpu.barrier_wait(do_bar.at[slot])

                # dV and dP^T in one group: one wait for both wgmmas
                dv, dpT = _mm(plgpu, cfg, [(dv, pT.astype(dtype), do_smem.at[slot], False),
                                           ((bk, bq), v_smem, do_smem.at[slot], True)])
                plgpu.barrier_wait(dl_bar.at[slot])
                delta = plgpu.load(dl_smem.at[slot], layout=COL)
                dsT = pT * (dpT - _bcast(delta, dpT.shape, 1))

                (dk,) = _mm(plgpu, cfg, [(dk, dsT.astype(dtype), q_smem.at[slot], False)])
                plgpu.barrier_arrive(free.at[slot])
                return dk, dv

            carry = lax.fori_loop(0, n_full, functools.partial(step, masked=False), (zero, zero))
            dk, dv = lax.fori_loop(n_full, n_tot, functools.partial(step, masked=True), carry)
            k_smem[...] = (dk * cfg.scale).astype(dtype)
            v_smem[...] = dv.astype(dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(k_smem, dk_ref.at[rows], commit_group=False)
            plgpu.copy_smem_to_gmem(v_smem, dv_ref.at[rows], commit_group=False)
            plgpu.commit_smem_to_gmem_group()
            plgpu.wait_smem_to_gmem(0)

        @pl.when(wg == nwg)
        def _memory():
            plgpu.set_max_registers(MEMORY_REGS, action="decrease")

            def load(i, slot):
                qb = tbl_ref[bi, kt, 2 + i]
                rows = (bi, pl.ds(qb * bq, bq), hi)
                plgpu.copy_gmem_to_smem(q_ref.at[rows], q_smem.at[slot], q_bar.at[slot])
                plgpu.copy_gmem_to_smem(lse_ref.at[bi, hi, pl.ds(qb * bq, bq)],
                                        lse_smem.at[slot], lse_bar.at[slot])
                plgpu.copy_gmem_to_smem(do_ref.at[rows], do_smem.at[slot], do_bar.at[slot])
                plgpu.copy_gmem_to_smem(dl_ref.at[bi, hi, pl.ds(qb * bq, bq)],
                                        dl_smem.at[slot], dl_bar.at[slot])

            _ring_producer(plgpu, ((load, free),), n_tot, steps)

    tr = _smem_transforms(plgpu, dtype)
    scratch = (
        plgpu.SMEM((nwg, bk, d), dtype, transforms=tr),
        plgpu.SMEM((nwg, bk, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bq, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bq, d), dtype, transforms=tr),
        plgpu.SMEM((steps, bq), jnp.float32),
        plgpu.SMEM((steps, bq), jnp.float32),
        plgpu.Barrier(num_barriers=nwg),
        plgpu.Barrier(num_barriers=nwg),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_barriers=steps),
        plgpu.Barrier(num_arrivals=nwg, num_barriers=steps),
    )
    return plgpu.kernel(
        body,
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
        scratch_types=scratch,
        grid=(h, lk // (nwg * bk), b), grid_names=("heads", "kv_seq", "batch"),
        num_threads=nwg + 1, thread_name="wg",
        compiler_params=_params(plgpu, cfg), interpret=_interpret(plgpu, cfg),
    )(q, k, v, do, lse, delta, qid, kid, tbl)


def _backward(q, k, v, qid, kid, o, lse, do, cfg: _Cfg):
    delta = jnp.einsum("blhd,blhd->bhl", o.astype(jnp.float32), do.astype(jnp.float32))
    do = do.astype(q.dtype)
    dq = _dq(q, k, v, do, lse, delta, qid, kid, cfg)
    dk, dv = _dkv(q, k, v, do, lse, delta, qid, kid, cfg)
    return dq, dk, dv


# ----------------------------------------------------------------------------- custom_vjp

_flash = common.flash_with_vjp(_forward, _backward)


# ----------------------------------------------------------------------------- public API

def _prepare(q, k, v, mask, scale, tune, interpret):
    common.check_qkv(q, k, v, "flash_attention_mgpu")
    tune = (tune or MgpuConfig()).validate()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    if d not in (64, 128):
        raise ValueError(f"flash_attention_mgpu: head dim {d} must be 64 or 128")
    if q.dtype not in (jnp.bfloat16, jnp.float16) or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError("flash_attention_mgpu: q, k, v must all be bfloat16 or all float16; "
                        f"got {q.dtype}, {k.dtype}, {v.dtype}")
    mask = mask if mask is not None else mask_lib.AttentionMask()
    if mask.block_causal is not None:
        raise NotImplementedError("flash_attention_mgpu: block_causal masks are not supported; "
                                  "use impl 'pallas_gpu' (Triton) or 'xla'")
    cfg = _Cfg(tune=tune, scale=float(d ** -0.5 if scale is None else scale),
               interpret=common.use_interpret(interpret))
    q_mult = math.lcm(2 * tune.block_q, tune.compute_wgs_bwd * tune.block_q_dq,
                      tune.block_q_dkv)
    k_mult = math.lcm(tune.block_kv, tune.compute_wgs_bwd * tune.block_kv_dkv,
                      tune.block_kv_dq)
    lq_p, lk_p = common.round_up(lq, q_mult), common.round_up(lk, k_mult)
    qid, kid = mask_lib.pad_ids(*mask_lib.canonical_ids(mask, b, lq, lk), lq_p, lk_p)
    return (common.pad_seq(q, lq_p), common.pad_seq(k, lk_p), common.pad_seq(v, lk_p),
            qid, kid, cfg)


def flash_attention_mgpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, scale=None,
                         config: Optional[MgpuConfig] = None, *,
                         interpret: Optional[bool] = None):
    """Masked flash attention on Hopper. q [B,Lq,H,D], k/v [B,Lk,H,D] -> [B,Lq,H,D]."""
    qp, kp, vp, qid, kid, cfg = _prepare(q, k, v, mask, scale, config, interpret)
    return _flash(qp, kp, vp, qid, kid, cfg)[:, :q.shape[1]]


def flash_forward_mgpu(q, k, v, mask: Optional[mask_lib.AttentionMask] = None, scale=None,
                       config: Optional[MgpuConfig] = None, *,
                       interpret: Optional[bool] = None):
    """Forward only: (out [B,Lq,H,D], lse f32 [B,Lq,H] natural log; huge on empty rows)."""
    qp, kp, vp, qid, kid, cfg = _prepare(q, k, v, mask, scale, config, interpret)
    o, lse2 = _forward(qp, kp, vp, qid, kid, cfg)
    lq = q.shape[1]
    return o[:, :lq], (lse2[:, :, :lq] / LOG2E).transpose(0, 2, 1)
