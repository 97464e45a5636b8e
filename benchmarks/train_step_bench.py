"""Train-step throughput at the spec's reference configuration (spec section 9).

8B width (d 4096, 32 heads, MLP 12288), 4 layers, vocab 134656, batch 4 x 1539 (2 t2i, 1 lm,
1 mmu rows), bf16 compute, float32 params and AdamW state. The official PyTorch figure on one
H100: 156.7 ms/step, 39.3k tokens/s, 35% MFU.

    python3 benchmarks/train_step_bench.py --impls xla,cudnn --steps 10
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

OFFICIAL_MS = 156.7
BREAKDOWN = False


def _time(fn, reps: int = 5) -> float:
    jax.block_until_ready(fn())
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def bench(impl: str, steps: int, seq_len: int, remat: str, layers: int,
          logits_dtype: str = "float32"):
    from mmada_jax.config import base_config, model_config
    from mmada_jax.data import build_batch_source
    from mmada_jax.training.flops import peak_tflops_per_device, train_flops_per_token
    from mmada_jax.training.loop import build, to_global
    from mmada_jax.training.step import init_train_state, jit_train_step

    c = base_config()
    c.model = model_config("8b", n_layers=layers, attention_impl=impl, remat=remat,
                           logits_dtype=logits_dtype)
    c.tokens.preset = "mmada_8b"
    c.seq_len = seq_len
    c.data.max_text_len = 512 if seq_len >= 1539 else 128
    c.tasks.t2i.batch_size, c.tasks.lm.batch_size, c.tasks.mmu.batch_size = 2, 1, 1
    c.optim.warmup_steps = 10
    c.mesh.data = 1
    c.train.skip_nonfinite = "_noguard" not in impl
    c.model.scan_layers = "_unrolled" not in impl
    c.model.attention_impl = impl.replace("_noguard", "").replace("_unrolled", "")
    s = build(c, jax.devices()[:1])
    state = init_train_state(s.model, s.tx, c, s.mesh, jax.random.key(0), s.state_shardings)
    src = build_batch_source(c, s.layout)
    batch = next(src)
    step = jit_train_step(s.model, s.tx, c, s.layout, s.mesh, s.state_shardings, batch,
                          s.lr_schedule)
    gb = to_global(batch, step.batch_shardings)
    t0 = time.perf_counter()
    compiled = step.jitted.lower(state, gb).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    for _ in range(3):
        state, m = step(state, gb)
    jax.block_until_ready(m["loss"])
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, m = step(state, gb)
        jax.block_until_ready(m["loss"])
        times.append(time.perf_counter() - t)
    ms = 1e3 * float(np.median(times))
    breakdown = {}
    if BREAKDOWN:
        import optax
        from mmada_jax.training.step import make_loss_fn
        loss_fn = make_loss_fn(s.model, c, s.layout)
        grad = jax.jit(jax.grad(lambda p, b: loss_fn(p, b, jax.random.key(0))[0]))
        upd = jax.jit(lambda g, st: optax.apply_updates(st.params, s.tx.update(
            g, st.opt_state, st.params)[0]))
        g = grad(state.params, gb)
        breakdown["fwd_bwd_ms"] = _time(lambda: grad(state.params, gb))
        breakdown["optimizer_ms"] = _time(lambda: upd(g, state))
        fwd = jax.jit(lambda p, b: loss_fn(p, b, jax.random.key(0))[0])
        breakdown["fwd_loss_ms"] = _time(lambda: fwd(state.params, gb))
        del g
    tokens = 4 * seq_len
    flops = train_flops_per_token(s.model.cfg, seq_len) * tokens
    peak = peak_tflops_per_device() or 989.0
    return dict(impl=impl, seq_len=seq_len, remat=remat, logits=logits_dtype, ms=ms, tokens_per_s=tokens / ms * 1e3,
                tflops=flops / ms / 1e9, mfu=flops / (ms / 1e3) / (peak * 1e12),
                speedup_vs_official=OFFICIAL_MS / ms, compile_s=compile_s,
                loss=float(m["loss"]), **breakdown,
                temp_gb=getattr(mem, "temp_size_in_bytes", 0) / 2**30 if mem else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impls", default="xla,cudnn")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seq_len", type=int, default=1539)
    ap.add_argument("--remat", default="none")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--out", default=None)
    ap.add_argument("--logits_dtype", default="float32,bfloat16")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time forward+backward and the optimizer update separately")
    a = ap.parse_args()
    global BREAKDOWN
    BREAKDOWN = a.breakdown
    print("device:", jax.devices()[0].device_kind, "jax", jax.__version__, flush=True)
    rows = []
    for logits_dtype in a.logits_dtype.split(","):
        for impl in a.impls.split(","):
            try:
                r = bench(impl, a.steps, a.seq_len, a.remat, a.layers, logits_dtype)
            except Exception as e:  # keep going: report the failure in the table
                r = dict(impl=impl, logits=logits_dtype,
                         error=f"{type(e).__name__}: {str(e)[:300]}")
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(f"\n| impl | logits | seq | ms/step | tokens/s | TFLOP/s | MFU | vs official {OFFICIAL_MS} ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['impl']} | {r['logits']} | error: {r['error'][:80]} |")
        else:
            print(f"| {r['impl']} | {r['logits']} | {r['seq_len']} | {r['ms']:.1f} | {r['tokens_per_s']:.0f} | "
                  f"{r['tflops']:.0f} | {100 * r['mfu']:.1f}% | {r['speedup_vs_official']:.2f}x |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
