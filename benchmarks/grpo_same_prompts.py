"""UniGRPO's training rewards against the SFT policy's on the very same prompts.

Each UniGRPO step samples new prompts, and with the demo's fixed `rl.seed` every run draws the
same prompt sequence, so the rollout reward curve mostly shows which prompts came up. This probe
samples the starting (SFT) policy on the training steps' own prompts with the training rollouts'
own keys (`UniGRPO.rollout(params, step)`) and prints, per step and per window of steps, the
stage's logged reward and pass rate next to the SFT policy's. At the first step the two policies
are the same, so its two rows must agree (a check that the replay is exact).

    python benchmarks/grpo_same_prompts.py --run runs/demo --windows 1-11,34-44 \
        [--tasks reasoning] [--out same_prompts.json]

RUN is a demo workdir with a finished UniGRPO stage (assets/, sft/, grpo/config.json and
grpo/metrics.jsonl[.gz]); the probe rebuilds that stage from its saved config in a scratch
directory and writes nothing into RUN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_windows(spec: str) -> list[tuple[int, int]]:
    """'1-11,34-44' -> [(1, 11), (34, 44)] (logged step numbers, 1-based, inclusive)."""
    out = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"--windows: bad range {part!r} (want A-B of step numbers)") from None
        if a < 1 or b < a:
            raise ValueError(f"--windows: bad range {part!r} (want A-B with 1 <= A <= B)")
        out.append((a, b))
    return out


def read_metrics(run: str) -> dict[int, dict]:
    """{logged step: its metrics row} of RUN/grpo/metrics.jsonl[.gz]."""
    from mmada_jax.evals.io import read_jsonl
    return {int(r["step"]): r
            for r in read_jsonl(os.path.join(run, "grpo", "metrics.jsonl"), ["step"])}


def _rebase(node, old: str, new: str):
    """`node` (nested dicts / lists) with every string path under `old` moved under `new`."""
    if isinstance(node, dict):
        return {k: _rebase(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old + os.sep)):
        return new + node[len(old):]
    return node


def stage_config(run: str):
    """The UniGRPO stage's own saved config (RUN/grpo/config.json) with its paths moved into RUN:
    the demo wrote them under the workdir it ran in (the parent of `rl.init_from`, its SFT
    stage), so the run's assets, code caches and SFT checkpoint are found wherever RUN is now."""
    import ml_collections
    path = os.path.join(run, "grpo", "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found (a demo run whose UniGRPO stage started?)")
    with open(path) as f:
        saved = json.load(f)
    init_from = str(saved.get("rl", {}).get("init_from", ""))
    if not init_from:
        raise ValueError(f"{path}: rl.init_from is empty (not a demo stage started from SFT)")
    cfg = ml_collections.ConfigDict(_rebase(saved, os.path.dirname(init_from.rstrip(os.sep)),
                                            run.rstrip(os.sep)))
    cfg.rl.init_from = os.path.join(run, "sft")
    return cfg


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--windows", default="1-11,34-44")
    ap.add_argument("--tasks", default="reasoning")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    windows = parse_windows(a.windows)
    metrics = read_metrics(a.run)
    missing = [s for lo, hi in windows for s in range(lo, hi + 1) if s not in metrics]
    if missing:
        raise ValueError(f"--windows: steps {missing} are not in {a.run}/grpo/metrics "
                         f"(logged: 1-{max(metrics)})")

    from mmada_jax.rl.trainer import UniGRPO
    cfg = stage_config(a.run)
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        import jax
        tr = UniGRPO(cfg, scratch, jax.devices()[:1])  # one device, as the demo's stages run
        unknown = [t for t in tasks if t not in tr.tasks]
        if unknown:
            raise ValueError(f"--tasks: {unknown} not among the stage's tasks {list(tr.tasks)}")
        rows = []
        for lo, hi in windows:
            for s in range(lo, hi + 1):
                items = {t: tr.prompts_for(t, s - 1) for t in tasks}
                rb = tr.rollout(tr.ref_params, s - 1, items_by_task=items)
                row = dict(step=s)
                for t in tasks:
                    sel = np.asarray(rb.task) == t
                    r = rb.rewards[sel]
                    row[t] = dict(sft_reward=float(r.mean()),
                                  sft_pass=float(rb.passed[sel].mean()),
                                  stage_reward=float(metrics[s][f"{t}/reward_mean"]),
                                  stage_pass=float(metrics[s][f"{t}/pass_rate"]))
                rows.append(row)
                print(json.dumps(row), flush=True)
        tr.close()
    summary = {}
    for lo, hi in windows:
        w = [r for r in rows if lo <= r["step"] <= hi]
        summary[f"{lo}-{hi}"] = {t: {k: sum(r[t][k] for r in w) / len(w) for k in w[0][t]}
                                 for t in tasks}
    for name, per in summary.items():
        for t, v in per.items():
            print(f"steps {name} {t}: reward SFT {v['sft_reward']:.3f} / stage "
                  f"{v['stage_reward']:.3f}; pass rate SFT {v['sft_pass']:.3f} / stage "
                  f"{v['stage_pass']:.3f}", flush=True)
    out = dict(run=a.run, rows=rows, windows=summary)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
