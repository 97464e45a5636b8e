"""The demo's UniGRPO stage alone, from a finished demo run's SFT checkpoint, over several rollout
seeds, each followed by the demo's eval: how much of a UniGRPO result is spread, and whether a
UniGRPO setting moves held-out accuracy (one demo run cannot tell: its stage moved reasoning by
-0.06 in v25 and +0.02 in v26, same config).

    python benchmarks/grpo_seeds.py --run runs/demo --out runs/grpo_seeds --seeds 1,2,3,4 \
        [--budget 120] [--overrides 'rl.tasks.vqa.prompts=3;rl.tasks.reasoning.prompts=3']

Seeds run one after another (each stage is timed by its budget: keep the box otherwise idle).
Writes OUT/seed{N}/grpo/ (checkpoints, metrics.jsonl, eval/report.json) and prints, and writes
to OUT/table.md, one markdown row per seed (held-out reasoning with its sound-steps share, VQA,
t2i object F1 and GenEval-style, POPE F1, the rollout rewards' first -> second half, steps),
under the SFT stage's own row, with the mean. A seed already evaluated in OUT is reused.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASKS = ("reasoning", "vqa", "t2i")


def reward_halves(metrics_path: str) -> tuple[str, int]:
    """'r1 -> r2 / ...' per task (mean reward over the first and second half of the steps)."""
    rows = [json.loads(x) for x in open(metrics_path)]
    h = max(1, len(rows) // 2)

    def mean(key, part):
        vals = [r[key] for r in part if key in r]
        return sum(vals) / len(vals) if vals else float("nan")
    return " / ".join(f"{mean(f'{t}/reward_mean', rows[:h]):.2f} -> "
                      f"{mean(f'{t}/reward_mean', rows[h:]):.2f}" for t in TASKS), len(rows)


def scores(report_path: str) -> dict:
    r = json.load(open(report_path))["results"]
    return dict(reasoning=r["reasoning"]["accuracy"], sound=r["reasoning"].get("sound_rate"),
                vqa=r["vqa"]["accuracy"], object_f1=r["t2i"]["object_f1"],
                geneval=r["t2i"]["overall"], pope_f1=r["pope"]["f1"])


def row(name: str, s: dict, rewards: str = "", steps="") -> str:
    sound = f" ({s['sound']:.3f})" if s.get("sound") is not None else ""
    return (f"| {name} | {s['reasoning']:.3f}{sound} | {s['vqa']:.3f} | {s['object_f1']:.3f} "
            f"({s['geneval']:.3f}) | {s['pope_f1']:.3f} | {rewards} | {steps} |")


def run_seed(dc, run_dir: str, wd: str, seed: int, budget: float, variant: str) -> str:
    """Train and evaluate one seed in `wd`; returns its eval report's path."""
    import jax
    from mmada_jax import assets, demo
    from mmada_jax.rl.trainer import UniGRPO
    report = os.path.join(wd, "grpo", "eval", "report.json")
    if os.path.exists(report):
        return report
    os.makedirs(wd, exist_ok=True)
    link = os.path.join(wd, "assets")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(os.path.join(run_dir, "assets")), link)
    demo.add_stage_override(dc, f"rl.seed={seed}", ("grpo",))
    cfgs = {s: demo._stage_config(s, variant, wd, dc)  # pylint: disable=protected-access
            for s in demo.STAGES}
    text_tok, image_tok = assets.text_tokenizer(cfgs["pretrain"]), assets.image_tokenizer(
        cfgs["pretrain"])
    demo.build_code_caches(cfgs, image_tok, os.path.join(wd, "assets"))
    cfg = cfgs["grpo"]
    cfg.rl.init_from = os.path.join(run_dir, "sft")
    UniGRPO(cfg, os.path.join(wd, "grpo"), jax.devices()[:1], text_tok, image_tok).run(
        budget_s=budget)
    demo.run_eval("grpo", cfg, os.path.join(wd, "grpo"), dc.eval, (text_tok, image_tok))
    return report


def main(argv):
    del argv
    import ml_collections
    from absl import flags, logging
    from mmada_jax import demo
    f = flags.FLAGS
    if f["verbosity"].present == 0:  # progress lines only, as the demo
        logging.set_verbosity(logging.WARNING)
    sft_report = os.path.join(f.run, "sft", "eval", "report.json")
    for need in (os.path.join(f.run, "sft", "DONE"), sft_report, os.path.join(f.run, "assets")):
        if not os.path.exists(need):
            raise FileNotFoundError(f"--run {f.run}: no {need} (a finished demo run's SFT stage, "
                                    "evaluated, with its assets)")
    seeds = [int(x) for x in f.seeds.split(",") if x.strip()]
    lines = ["| UniGRPO seed | reasoning (sound steps) | VQA | t2i object F1 (GenEval-style) | "
             "POPE F1 | rollout rewards, first -> second half (reasoning / VQA / t2i) | steps |",
             "|---|---|---|---|---|---|---|", row("SFT", scores(sft_report))]
    got = []
    for seed in seeds:
        dc = demo.demo_config(f.variant)
        dc = ml_collections.ConfigDict(dc.to_dict())
        if f.overrides:
            demo.add_stage_override(dc, f.overrides, ("grpo",))
        wd = os.path.join(f.out, f"seed{seed}")
        report = run_seed(dc, f.run, wd, seed, f.budget, f.variant)
        s = scores(report)
        got.append(s)
        rewards, steps = reward_halves(os.path.join(wd, "grpo", "metrics.jsonl"))
        lines.append(row(str(seed), s, rewards, steps))
        print(lines[-1], flush=True)
    mean = {k: sum(g[k] for g in got) / len(got) if all(g[k] is not None for g in got) else None
            for k in got[0]}
    lines.append(row("mean", mean))
    table = "\n".join(lines) + "\n"
    with open(os.path.join(f.out, "table.md"), "w") as fh:
        fh.write(f"overrides: {f.overrides or '(none)'}; budget {f.budget:.0f} s; from "
                 f"{os.path.abspath(f.run)}/sft\n\n" + table)
    print(table)


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("run", "runs/demo", "A finished demo run (its sft/ and assets/).")
    flags.DEFINE_string("out", "runs/grpo_seeds", "Where each seed's stage goes.")
    flags.DEFINE_string("seeds", "0,1,2,3,4", "Comma-separated rollout seeds (rl.seed).")
    flags.DEFINE_float("budget", 120.0, "Seconds per UniGRPO stage (the cpu demo's).")
    flags.DEFINE_string("overrides", "", "UniGRPO stage config overrides, 'key=value;...'.")
    flags.DEFINE_string("variant", "cpu", "Demo variant (demo_config).")
    app.run(main)
