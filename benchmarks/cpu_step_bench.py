"""Train-step time of the CPU demo's stages (the `cpu` variant of experiments/sw_common.py) on
this machine, with real batches from a demo run's assets, for each setting compared.

    JAX_PLATFORMS=cpu python benchmarks/cpu_step_bench.py --assets runs/demo/assets \
        --stages pretrain,sft --compare 'model.swiglu_grad=xla' 'model.swiglu_grad=split'

Each setting: 5 warm-up steps, then the median of --steps steps (`block_until_ready` around each)
over 8 pre-built batches; the batch-building time is reported separately (the demo builds batches
in the training process while the previous step runs). Prints one JSON line per (stage,
setting) and a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(stage: str, setting: str, workdir: str, steps: int) -> dict:
    import jax
    import numpy as np
    from mmada_jax import assets, demo
    from mmada_jax.config import apply_overrides, parse_overrides
    from mmada_jax.training.loop import build, to_global
    from mmada_jax.training.step import init_train_state, jit_train_step
    dc = demo.demo_config("cpu")
    cfgs = {s: demo._stage_config(s, "cpu", workdir, dc) for s in demo.STAGES}
    demo.build_code_caches(cfgs, assets.image_tokenizer(cfgs["pretrain"]),
                           os.path.join(workdir, "assets"))
    c = cfgs[stage]
    if setting:
        c = apply_overrides(c, parse_overrides(setting, "setting"))
        c.unlock()
    s = build(c, jax.devices()[:1])
    state = init_train_state(s.model, s.tx, c, s.mesh, jax.random.key(0), s.state_shardings)
    src = assets.batch_source(c, s.layout)
    t = time.perf_counter()
    batches = [next(src) for _ in range(8)]
    data_ms = 1e3 * (time.perf_counter() - t) / 8
    step = jit_train_step(s.model, s.tx, c, s.layout, s.mesh, s.state_shardings, batches[0],
                          s.lr_schedule)
    gbs = [to_global(b, step.batch_shardings) for b in batches]
    for i in range(5):
        state, _ = step(state, gbs[i % 8])
    jax.block_until_ready(state)
    ts = []
    for i in range(steps):
        t = time.perf_counter()
        state, _ = step(state, gbs[i % 8])
        jax.block_until_ready(state)
        ts.append(time.perf_counter() - t)
    rows = {k: int(v["tokens"].shape[0]) for k, v in batches[0].items()}
    return dict(stage=stage, setting=setting or "(stage config)", step_ms=1e3 * float(np.median(ts)),
                step_ms_p90=1e3 * float(np.percentile(ts, 90)), data_ms=data_ms, rows=rows,
                seq_len=int(c.seq_len))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default="runs/demo/assets", help="a cpu demo run's assets/")
    ap.add_argument("--stages", default="pretrain,sft")
    ap.add_argument("--compare", nargs="*", default=[""],
                    help="settings, each 'key=value;key=value' over the stage config")
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    workdir = os.path.dirname(os.path.abspath(a.assets.rstrip("/")))
    out = []
    for stage in a.stages.split(","):
        for setting in a.compare:
            r = bench(stage, setting, workdir, a.steps)
            print(json.dumps(r), flush=True)
            out.append(r)
    print("\n| stage | setting | ms/step (median) | p90 | batch build ms |\n|---|---|---|---|---|")
    for r in out:
        print(f"| {r['stage']} | {r['setting']} | {r['step_ms']:.1f} | {r['step_ms_p90']:.1f} | "
              f"{r['data_ms']:.1f} |")


if __name__ == "__main__":
    main()
