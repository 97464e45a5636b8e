"""Time the UniGRPO stage's rollouts under text-sampler settings, from a finished demo run's SFT
checkpoint: seconds per rollout batch (all tasks), the pass rate and response length per task.

    python benchmarks/grpo_rollout_time.py --run runs/demo --out /tmp/rollout_time \
        --variants 'exact=rl.text_sampler.stop_at_eos=False;eos=rl.text_sampler.stop_at_eos=True'

Each variant is 'name=overrides' (UniGRPO stage config overrides, 'key=value' joined by ','
between variants' own settings: 'eos_dual=rl.text_sampler.stop_at_eos=True,rl.text_sampler.
cache=dual'). The first rollout of each variant (compilation) is not timed; every variant draws
the same prompts and keys, so an exact setting gives the same pass rates as 'exact' (the cpu
default stops at eos since v30: 'exact' switches that off). Prints one
JSON line per variant; keep the box otherwise idle.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def time_variant(run: str, out: str, name: str, overrides: str, steps: int) -> dict:
    import jax
    import numpy as np
    from mmada_jax import assets, demo
    from mmada_jax.rl.trainer import UniGRPO
    dc = demo.demo_config("cpu")
    if overrides:
        demo.add_stage_override(dc, overrides.replace(",", ";"), ("grpo",))
    wd = os.path.join(out, name)
    os.makedirs(wd, exist_ok=True)
    link = os.path.join(wd, "assets")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(os.path.join(run, "assets")), link)
    cfgs = {s: demo._stage_config(s, "cpu", wd, dc)  # pylint: disable=protected-access
            for s in demo.STAGES}
    tok = (assets.text_tokenizer(cfgs["pretrain"]), assets.image_tokenizer(cfgs["pretrain"]))
    cfg = cfgs["grpo"]
    cfg.rl.init_from = os.path.join(run, "sft")
    tr = UniGRPO(cfg, os.path.join(wd, "grpo"), jax.devices()[:1], *tok)
    times, passed, lengths = [], {}, {}
    for step in range(steps):
        t0 = time.perf_counter()
        rb = tr.rollout(tr.state.params, step)
        if step:
            times.append(time.perf_counter() - t0)
        tasks = np.asarray(rb.task)
        for t in dict.fromkeys(rb.task):
            sel = tasks == t
            passed.setdefault(t, []).append(float(rb.passed[sel].mean()))
            lengths.setdefault(t, []).append(float(rb.region[sel].sum(-1).mean()))
    return dict(variant=name, overrides=overrides, rollout_s=round(float(np.mean(times)), 3),
                pass_rate={t: round(float(np.mean(v)), 3) for t, v in passed.items()},
                response_len={t: round(float(np.mean(v)), 1) for t, v in lengths.items()})


def main(argv):
    del argv
    from absl import flags
    f = flags.FLAGS
    if f.steps < 2:
        raise ValueError(f"--steps {f.steps}: need at least 2 (the first is not timed)")
    if not os.path.exists(os.path.join(f.run, "sft", "DONE")):
        raise FileNotFoundError(f"--run {f.run}: no finished SFT stage (sft/DONE)")
    for spec in f.variants.split(";"):
        name, _, overrides = spec.partition("=")
        if not name:
            raise ValueError(f"--variants: {spec!r} is not 'name=overrides'")
        print(json.dumps(time_variant(f.run, f.out, name.strip(), overrides.strip(), f.steps)),
              flush=True)


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("run", "runs/demo", "A finished demo run (its sft/ and assets/).")
    flags.DEFINE_string("out", "/tmp/rollout_time", "Scratch workdirs, one per variant.")
    flags.DEFINE_string("variants", "exact=rl.text_sampler.stop_at_eos=False;"
                        "eos=rl.text_sampler.stop_at_eos=True",
                        "'name=k=v,k=v;name=...'")
    flags.DEFINE_integer("steps", 6, "Rollout batches per variant (the first is not timed).")
    app.run(main)
