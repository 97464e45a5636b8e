"""The demo's UniGRPO stage alone, from a finished demo run's SFT checkpoint, over several rollout
seeds, each followed by the demo's eval: how much of a UniGRPO result is spread, and whether a
UniGRPO setting moves held-out accuracy (one demo run cannot tell: its stage moved reasoning by
-0.06 in v25 and +0.02 in v26, same config).

    python benchmarks/grpo_seeds.py --run runs/demo --out runs/grpo_seeds --seeds 1,2,3,4 \
        [--budget 120] [--overrides 'rl.tasks.vqa.prompts=3;rl.tasks.reasoning.prompts=3'] \
        [--eval_set n_reasoning=384 --eval_set n_vqa=384 ...]

Seeds run one after another (each stage is timed by its budget: keep the box otherwise idle).
Writes OUT/seed{N}/grpo/ (checkpoints, metrics.jsonl, eval/report.json) and prints, and writes
to OUT/table.md, one markdown row per seed (held-out reasoning with its sound-steps share, VQA,
t2i object F1 and GenEval-style, POPE F1, the rollout rewards' first -> second half, steps),
under the SFT stage's own row, with the mean. A seed already evaluated in OUT is reused.
With `--eval_set` (config.eval overrides, e.g. larger item sets) the SFT checkpoint is evaluated
the same way once (OUT/sft_eval/), and each seed's row adds its item-by-item change against it on
reasoning and VQA: items fixed / broken and the exact sign test's p (`mmada_jax/evals/paired.py`).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASKS = ("reasoning", "vqa", "t2i")


def reward_halves(metrics_path: str) -> tuple[str, int]:
    """'r1 -> r2 / ...' per task (mean reward over the first and second half of the steps)."""
    from mmada_jax.evals.io import read_jsonl
    rows = read_jsonl(metrics_path)
    h = max(1, len(rows) // 2)

    def mean(key, part):
        vals = [r[key] for r in part if key in r]
        return sum(vals) / len(vals) if vals else float("nan")
    return " / ".join(f"{mean(f'{t}/reward_mean', rows[:h]):.2f} -> "
                      f"{mean(f'{t}/reward_mean', rows[h:]):.2f}" for t in TASKS), len(rows)


def fmt(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def scores(report_path: str) -> dict:
    r = json.load(open(report_path))["results"]

    def get(task, key):
        return r.get(task, {}).get(key)
    return dict(reasoning=get("reasoning", "accuracy"), sound=get("reasoning", "sound_rate"),
                vqa=get("vqa", "accuracy"), object_f1=get("t2i", "object_f1"),
                geneval=get("t2i", "overall"), pope_f1=get("pope", "f1"))


def paired_cell(before_dir: str, after_dir: str) -> str:
    """'reasoning +a/-b p=.., vqa .., reasoning sound ..' from two eval dirs' answers.jsonl."""
    from mmada_jax.evals.paired import paired_changes
    from mmada_jax.pipeline_report import read_jsonl
    a = read_jsonl(os.path.join(before_dir, "answers.jsonl"))
    b = read_jsonl(os.path.join(after_dir, "answers.jsonl"))
    ch = (paired_changes(a, b, ("reasoning", "vqa"))
          + paired_changes(a, b, ("reasoning",), field="sound", label="sound"))
    return ", ".join(f"{c.task} +{c.fixed}/-{c.broken} p={c.p_value:.2g}" for c in ch)


def row(name: str, s: dict, rewards: str = "", steps="", paired: str = "") -> str:
    sound = f" ({s['sound']:.3f})" if s.get("sound") is not None else ""
    return (f"| {name} | {fmt(s['reasoning'])}{sound} | {fmt(s['vqa'])} | {fmt(s['object_f1'])} "
            f"({fmt(s['geneval'])}) | {fmt(s['pope_f1'])} | {rewards} | {steps} | {paired} |")


def stage_configs(dc, wd: str, variant: str, run_dir: str):
    """(stage configs for workdir `wd`, (text, image) tokenizers), the run's assets linked in."""
    from mmada_jax import assets, demo
    os.makedirs(wd, exist_ok=True)
    link = os.path.join(wd, "assets")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(os.path.join(run_dir, "assets")), link)
    cfgs = {s: demo._stage_config(s, variant, wd, dc)  # pylint: disable=protected-access
            for s in demo.STAGES}
    tokens = (assets.text_tokenizer(cfgs["pretrain"]), assets.image_tokenizer(cfgs["pretrain"]))
    demo.build_code_caches(cfgs, tokens[1], os.path.join(wd, "assets"))
    return cfgs, tokens


def eval_sft(dc, run_dir: str, out: str, variant: str) -> str:
    """The run's SFT checkpoint evaluated with `dc.eval` into OUT/sft_eval (reused if there)."""
    from mmada_jax import demo
    out_dir = os.path.join(out, "sft_eval")
    cfgs, tokens = stage_configs(dc, os.path.join(out, "sft_ws"), variant, run_dir)
    demo.run_eval("sft", cfgs["sft"], os.path.join(run_dir, "sft"), dc.eval, tokens, out_dir)
    return out_dir


def run_seed(dc, run_dir: str, wd: str, seed: int, budget: float, variant: str) -> str:
    """Train and evaluate one seed in `wd`; returns its eval report's path."""
    import jax
    from mmada_jax import demo
    from mmada_jax.rl.trainer import UniGRPO
    report = os.path.join(wd, "grpo", "eval", "report.json")
    if os.path.exists(report):
        return report
    demo.add_stage_override(dc, f"rl.seed={seed}", ("grpo",))
    cfgs, (text_tok, image_tok) = stage_configs(dc, wd, variant, run_dir)
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
    from mmada_jax.evaluate import apply_sets
    f = flags.FLAGS
    if f["verbosity"].present == 0:  # progress lines only, as the demo
        logging.set_verbosity(logging.WARNING)
    sft_report = os.path.join(f.run, "sft", "eval", "report.json")
    for need in (os.path.join(f.run, "sft", "DONE"), sft_report, os.path.join(f.run, "assets")):
        if not os.path.exists(need):
            raise FileNotFoundError(f"--run {f.run}: no {need} (a finished demo run's SFT stage, "
                                    "evaluated, with its assets)")
    seeds = [int(x) for x in f.seeds.split(",") if x.strip()]

    def config():
        dc = ml_collections.ConfigDict(demo.demo_config(f.variant).to_dict())
        if f.eval_set:
            dc.eval = apply_sets(dc.eval, f.eval_set)
        return dc
    sft_dir = (eval_sft(config(), f.run, f.out, f.variant) if f.eval_set
               else os.path.dirname(sft_report))
    lines = ["| UniGRPO seed | reasoning (sound steps) | VQA | t2i object F1 (GenEval-style) | "
             "POPE F1 | rollout rewards, first -> second half (reasoning / VQA / t2i) | steps | "
             "items fixed / broken vs SFT |",
             "|---|---|---|---|---|---|---|---|",
             row("SFT", scores(os.path.join(sft_dir, "report.json")))]
    got = []
    for seed in seeds:
        dc = config()
        if f.overrides:
            demo.add_stage_override(dc, f.overrides, ("grpo",))
        wd = os.path.join(f.out, f"seed{seed}")
        report = run_seed(dc, f.run, wd, seed, f.budget, f.variant)
        s = scores(report)
        got.append(s)
        rewards, steps = reward_halves(os.path.join(wd, "grpo", "metrics.jsonl"))
        lines.append(row(str(seed), s, rewards, steps,
                         paired_cell(sft_dir, os.path.dirname(report))))
        print(lines[-1], flush=True)
    mean = {k: sum(g[k] for g in got) / len(got) if all(g[k] is not None for g in got) else None
            for k in got[0]}
    lines.append(row("mean", mean))
    table = "\n".join(lines) + "\n"
    with open(os.path.join(f.out, "table.md"), "w") as fh:
        fh.write(f"overrides: {f.overrides or '(none)'}; eval: {' '.join(f.eval_set) or "the "
                 "demo's"}; budget {f.budget:.0f} s; from "
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
    flags.DEFINE_multi_string("eval_set", [], "Eval override key=value (config.eval), for the "
                              "seeds and the SFT checkpoint alike.")
    app.run(main)
