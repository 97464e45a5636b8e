"""Attention benchmark on one GPU: Pallas kernels (Mosaic GPU, Triton) vs cuDNN vs XLA, and decode.

    python3 benchmarks/attention_bench.py [--quick] [--out DIR]

Checks correctness on the device first (bf16 kernel vs float32 reference, forward and
gradients), then times forward and forward+backward for B4 H32 D128 at S = 1024, 2048, 4096
with no mask, 1/8 of the keys padded, and 4 packed segments, and the decode shape (32 queries
against 2048 / 4096 cached keys). TFLOP/s count dense attention (4*B*H*S*S*D forward, 3.5x that
forward+backward) for every implementation and mask, so the numbers compare time directly.
Median of timed reps after warm-up, each rep synchronized.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_kernels():
    """`import mmada_jax.kernels`, mapping the top-level kernels/ folder if not installed."""
    try:
        import mmada_jax.kernels as mk  # noqa: F401
        return mk
    except ImportError:
        sys.path.insert(0, ROOT)
        spec = importlib.util.spec_from_file_location(
            "mmada_jax.kernels", os.path.join(ROOT, "kernels", "__init__.py"),
            submodule_search_locations=[os.path.join(ROOT, "kernels")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["mmada_jax.kernels"] = mod
        spec.loader.exec_module(mod)
        return mod


mk = _import_kernels()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mmada_jax.kernels import dispatch, gpu_flash, gpu_mgpu, decode as decode_lib  # noqa: E402
from mmada_jax.kernels import mask as mask_lib, testing as kt  # noqa: E402
from mmada_jax.model.attention import xla_attention  # noqa: E402


def timed(fn, *args, reps=20, warmup=3):
    """Median seconds of fn(*args) (jitted), each rep synchronized."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


# extra tunings of the Mosaic GPU kernel timed next to the default one
MGPU_VARIANTS = {
    "kv64": gpu_mgpu.MgpuConfig(block_kv=64),
    "dkvq128": gpu_mgpu.MgpuConfig(block_q_dkv=128),
    "dqkv64": gpu_mgpu.MgpuConfig(block_kv_dq=64),
    "bwd_s3": gpu_mgpu.MgpuConfig(block_kv=64, max_concurrent_steps=3),
}


def make_inputs(rng, b, s, h, d, kind):
    q, k, v = kt.random_qkv(rng, b, s, s, h, d, jnp.bfloat16)
    km = seg = None
    if kind == "pad8":   # the last 1/8 of each row's keys padded
        km = jnp.asarray(np.arange(s)[None, :] < np.full((b, 1), s - s // 8))
    elif kind == "seg4":  # 4 packed segments of equal length
        seg = jnp.asarray(np.repeat(np.arange(4, dtype=np.int32), s // 4)[None].repeat(b, 0))
    return q, k, v, km, seg


def impls_for(kind):
    """name -> fn(q, k, v, km, seg) for the mask kind."""
    gpu = lambda q, k, v, km, seg: gpu_flash.flash_attention_gpu(
        q, k, v, mask_lib.make_mask(km, seg))
    xla = lambda q, k, v, km, seg: xla_attention(q, k, v, key_mask=km, segment_ids=seg,
                                                 kv_segment_ids=seg, scale=q.shape[-1] ** -0.5)
    def cud(kwargs_fn):
        return lambda q, k, v, km, seg: jax.nn.dot_product_attention(
            q, k, v, implementation="cudnn", **kwargs_fn(q, km, seg))
    mgpu = lambda q, k, v, km, seg: gpu_mgpu.flash_attention_mgpu(
        q, k, v, mask_lib.make_mask(km, seg))
    out = {"pallas_mgpu": mgpu, "pallas_gpu": gpu, "xla": xla}
    if kind == "none":
        out["cudnn"] = cud(lambda q, km, seg: {})
    if kind == "pad8":
        out["cudnn_seqlen"] = cud(lambda q, km, seg: dict(
            query_seq_lengths=jnp.full((q.shape[0],), q.shape[1], jnp.int32),
            key_value_seq_lengths=jnp.sum(km, -1, dtype=jnp.int32)))
        out["cudnn_bool"] = cud(lambda q, km, seg: dict(mask=jnp.broadcast_to(
            km[:, None, None, :], (q.shape[0], 1, q.shape[1], km.shape[1]))))
    if kind == "seg4":
        out["cudnn_bool"] = cud(lambda q, km, seg: dict(
            mask=(seg[:, :, None] == seg[:, None, :])[:, None]))
    out["cudnn_wrapper"] = lambda q, k, v, km, seg: dispatch.cudnn_attention(
        q, k, v, key_mask=km, segment_ids=seg)
    return out


def fwd_bwd(fn):
    def loss(q, k, v, km, seg):
        return jnp.sum(fn(q, k, v, km, seg).astype(jnp.float32) ** 2)
    return jax.grad(loss, argnums=(0, 1, 2))


def correctness(rng, log):
    rows = []
    b, s, h, d = 2, 1000, 4, 128
    for kind in ("none", "key_pad", "segments", "empty_rows", "block_causal"):
        q, k, v = kt.random_qkv(rng, b, s, s, h, d, jnp.bfloat16)
        m = kt.random_mask(rng, kind, b, s, s)
        ct = jnp.asarray(rng.standard_normal(q.shape, np.float32), jnp.bfloat16)
        up = lambda x: x.astype(jnp.float32)

        @jax.jit
        def both(q, k, v, ct, m):
            o, vjp = jax.vjp(lambda q, k, v: gpu_flash.flash_attention_gpu(q, k, v, m), q, k, v)
            r, rvjp = jax.vjp(lambda q, k, v: mask_lib.reference_attention(q, k, v, m),
                              up(q), up(k), up(v))
            return (o, *vjp(ct)), (r, *rvjp(up(ct)))

        got, want = both(q, k, v, ct, m)
        errs = [kt.rel_err(np.asarray(g, np.float32), w) for g, w in zip(got, want)]
        rows.append(dict(kind=kind, errs=errs, ok=all(e < 1e-2 for e in errs)))
        log(f"correct pallas_gpu {kind:13s} out/dq/dk/dv rel err "
            + " ".join(f"{e:.1e}" for e in errs) + ("" if rows[-1]["ok"] else "  FAIL"))
    # decode path (split keys) against the reference
    q, k, v = kt.random_qkv(rng, 4, 32, 2048, 8, 128, jnp.bfloat16)
    km = jnp.asarray(np.arange(2048)[None] < rng.integers(1, 2049, (4, 1)))
    got = decode_lib.decode_attention(q, k, v, km)
    want = mask_lib.reference_attention(*(x.astype(jnp.float32) for x in (q, k, v)),
                                        mask_lib.make_mask(km))
    e = kt.rel_err(np.asarray(got, np.float32), want)
    rows.append(dict(kind="decode", errs=[e], ok=e < 1e-2))
    log(f"correct pallas_decode       rel err {e:.1e}")
    return rows


def bench(rng, log, seqs, reps, configs, mgpu_configs=None, only=None):
    results = []
    b, h, d = 4, 32, 128
    for s in seqs:
        flops_f = 4.0 * b * h * s * s * d
        for kind in ("none", "pad8", "seg4"):
            q, k, v, km, seg = make_inputs(rng, b, s, h, d, kind)
            impls = impls_for(kind)
            for cname, cfg in configs.items():
                if cname != "default":
                    impls[f"pallas_gpu[{cname}]"] = (
                        lambda cfg: lambda q, k, v, km, seg: gpu_flash.flash_attention_gpu(
                            q, k, v, mask_lib.make_mask(km, seg), config=cfg))(cfg)
            for cname, cfg in (mgpu_configs or {}).items():
                impls[f"pallas_mgpu[{cname}]"] = (
                    lambda cfg: lambda q, k, v, km, seg: gpu_mgpu.flash_attention_mgpu(
                        q, k, v, mask_lib.make_mask(km, seg), config=cfg))(cfg)
            for name, fn in impls.items():
                if only and not any(name.startswith(o) for o in only):
                    continue
                row = dict(S=s, mask=kind, impl=name)
                for mode, f, fl in (("fwd", jax.jit(fn), flops_f),
                                    ("fwd+bwd", jax.jit(fwd_bwd(fn)), 3.5 * flops_f)):
                    try:
                        t = timed(f, q, k, v, km, seg, reps=reps)
                        row[mode + "_ms"] = t * 1e3
                        row[mode + "_tflops"] = fl / t / 1e12
                    except Exception as e:  # keep going: report what failed
                        row[mode + "_error"] = f"{type(e).__name__}: {str(e)[:200]}"
                results.append(row)
                log(f"S={s} {kind:5s} {name:26s} " + " ".join(
                    f"{m}={row[m + '_tflops']:.0f}TF/s({row[m + '_ms']:.2f}ms)"
                    if m + "_tflops" in row else f"{m}=ERR({row.get(m + '_error', '')[:80]})"
                    for m in ("fwd", "fwd+bwd")))
    return results


def bench_decode(rng, log, reps):
    results = []
    h, d, lq = 32, 128, 32
    for b, lk in ((4, 2048), (4, 4096), (1, 4096)):
        q, k, v = kt.random_qkv(rng, b, lq, lk, h, d, jnp.bfloat16)
        km = jnp.asarray(np.arange(lk)[None] < rng.integers(lk // 2, lk + 1, (b, 1)))
        impls = {
            "pallas_decode": lambda q, k, v, km: decode_lib.decode_attention(q, k, v, km),
            "pallas_decode[4 splits]": lambda q, k, v, km: decode_lib.decode_attention(
                q, k, v, km, num_splits=4),
            "xla": lambda q, k, v, km: xla_attention(q, k, v, key_mask=km,
                                                     scale=d ** -0.5),
            "cudnn_wrapper": lambda q, k, v, km: dispatch.cudnn_attention(q, k, v, key_mask=km),
        }
        base = None
        for name, fn in impls.items():
            try:
                t = timed(jax.jit(fn), q, k, v, km, reps=reps)
                gbs = 2 * b * lk * h * d * 2 / t / 1e9
                row = dict(B=b, Lq=lq, Lk=lk, impl=name, ms=t * 1e3, kv_GBps=gbs)
            except Exception as e:
                row = dict(B=b, Lq=lq, Lk=lk, impl=name, error=f"{type(e).__name__}: {str(e)[:200]}")
            results.append(row)
            if name == "xla" and "ms" in row:
                base = row["ms"]
            log(f"decode B={b} Lq={lq} Lk={lk} {name:24s} " + (
                f"{row['ms'] * 1e3:.0f}us  K/V read {row['kv_GBps']:.0f} GB/s" if "ms" in row
                else "ERR " + row["error"][:100]))
        for row in results:
            if row.get("Lk") == lk and row.get("B") == b and "ms" in row and base:
                row["speedup_vs_xla"] = base / row["ms"]
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="S=1024 only, few reps")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--skip-correctness", action="store_true")
    ap.add_argument("--no-triton-variant", action="store_true",
                    help="time only the default Triton config")
    ap.add_argument("--mgpu-variants", action="store_true",
                    help="also time the MGPU_VARIANTS tunings of pallas_mgpu")
    ap.add_argument("--only", default="", help="comma list of impl name prefixes to time")
    ap.add_argument("--seqs", default="", help="comma list of sequence lengths")
    args = ap.parse_args()
    lines = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    dev = jax.devices()[0]
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                device=getattr(dev, "device_kind", str(dev)), jax=jax.__version__,
                host=platform.node(), command=" ".join(sys.argv))
    log(json.dumps(meta))
    rng = np.random.default_rng(0)
    res = dict(meta=meta)
    t0 = time.time()
    try:
        if not args.skip_correctness:
            res["correctness"] = correctness(rng, log)
    except Exception:
        log("correctness FAILED:\n" + traceback.format_exc())
    log(f"[{time.time() - t0:.0f}s]")
    configs = {"default": gpu_flash.GpuConfig()}
    if not args.quick and not args.no_triton_variant:
        configs["q128k128w8"] = gpu_flash.GpuConfig(block_q=128, block_k=128, num_warps=8,
                                                    block_q_bwd=64, block_k_bwd=128,
                                                    num_warps_bwd=8)
    seqs = (1024,) if args.quick else (1024, 2048, 4096)
    if args.seqs:
        seqs = tuple(int(x) for x in args.seqs.split(","))
    reps = 5 if args.quick else 20
    res["decode"] = [] if args.skip_decode else bench_decode(rng, log, reps)
    log(f"[{time.time() - t0:.0f}s]")
    mgpu_configs = MGPU_VARIANTS if args.mgpu_variants else {}
    only = [o for o in args.only.split(",") if o]
    res["bench"] = bench(rng, log, seqs, reps, configs, mgpu_configs, only)
    log(f"[{time.time() - t0:.0f}s]")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "attention_bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "attention_bench.log"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # compact table last
    print("\n| S | mask | impl | fwd TF/s | fwd+bwd TF/s |\n|---|---|---|---|---|")
    for r in res["bench"]:
        print(f"| {r['S']} | {r['mask']} | {r['impl']} | {r.get('fwd_tflops', float('nan')):.0f} "
              f"| {r.get('fwd+bwd_tflops', float('nan')):.0f} |")
    for r in res["decode"]:
        print(f"decode B{r['B']} {r['Lq']}x{r['Lk']} {r['impl']}: {r.get('ms', float('nan')) * 1e3:.0f} us "
              f"x{r.get('speedup_vs_xla', float('nan')):.2f} vs xla")


if __name__ == "__main__":
    main()
