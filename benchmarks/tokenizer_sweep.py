"""Tokenizer learning curves: PSNR and scene-parser agreement against steps for several
ShapesWorld tokenizer configs, run side by side (one process each), plus each config's step time.

    python benchmarks/tokenizer_sweep.py --out runs/tok_sweep --steps 1000 --eval_every 100 \
        'base=' 'b8=batch_size=8' '32px=data.image_size=32'

Each variant is `name=key=value,key=value` (config overrides on
experiments/tokenizer_shapesworld.py) or `name=:variant,key=value` (a variant of that file). Writes OUT/<name>/metrics.jsonl and OUT/summary.md:
per variant the step time and the first step at which PSNR >= 28 dB and parser agreement >= 0.98.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_variants(variants, out, steps, eval_every, parallel):
    procs = []
    for v in variants:
        name, _, over = v.partition("=")
        variant = ""
        if over.startswith(":"):  # ':lite,lr=...' picks the config file's variant
            variant, _, over = over[1:].partition(",")
        wd = os.path.join(out, name)
        cfg_path = os.path.join(ROOT, "experiments/tokenizer_shapesworld.py")
        args = [sys.executable, "-m", "mmada_jax.train_tokenizer", "--config",
                cfg_path + (f":{variant}" if variant else ""), "--workdir", wd,
                f"--config.train.steps={steps}", f"--config.train.eval_every={eval_every}",
                "--config.train.eval_parser=True", "--config.train.ckpt_every=100000",
                "--config.train.log_every=20"]
        args += [f"--config.{kv}" for kv in over.split(",") if kv]
        log = open(os.path.join(out, f"{name}.log"), "w")
        procs.append((name, subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=ROOT)))
        if not parallel:
            procs[-1][1].wait()
    for _, p in procs:
        p.wait()
    return [n for n, _ in procs]


def summarize(out, names, psnr_target=28.0, agree_target=0.98) -> str:
    lines = ["| variant | steps/s | eval steps: PSNR / parser agreement | first step at target |",
             "|---|---|---|---|"]
    for n in names:
        path = os.path.join(out, n, "metrics.jsonl")
        if not os.path.exists(path):
            lines.append(f"| {n} | failed (see {n}.log) | | |")
            continue
        rows = [json.loads(l) for l in open(path)]
        rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r][2:]
        evals = [r for r in rows if "eval/psnr" in r]
        curve = " ; ".join(f"{r['step']}: {r['eval/psnr']:.1f}/{r.get('eval/parse_agreement', -1):.2f}"
                           for r in evals)
        hit = next((r["step"] for r in evals if r["eval/psnr"] >= psnr_target
                    and r.get("eval/parse_agreement", 0) >= agree_target), None)
        rate = sum(rates) / len(rates) if rates else float("nan")
        lines.append(f"| {n} | {rate:.2f} | {curve} | {hit} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--out", default="runs/tok_sweep")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--eval_every", type=int, default=100)
    ap.add_argument("--serial", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    names = run_variants(a.variants, a.out, a.steps, a.eval_every, not a.serial)
    table = summarize(a.out, names)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
