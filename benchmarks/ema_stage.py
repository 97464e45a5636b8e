"""The parameters' moving average (`train.ema_decay`, `mmada_jax/training/ema.py`) against the
last step's parameters, on the same training run: both are evaluated with the demo's eval and
compared item by item (`mmada_jax/evals/paired.py`), so run-to-run spread does not enter.

Retrain one stage of a finished demo run with an average kept (same config, steps and
starting checkpoint as the run's stage, `--steps` to change), then evaluate both weights:

    python benchmarks/ema_stage.py --run runs/demo --stage sft --decay 0.995 --out runs/ema_sft \
        [--eval_set n_reasoning=384 --eval_set n_vqa=384]

or, with `--decay 0`, evaluate both weights of the run's own stage (pretrain, sft or grpo; one
that kept an average; without `--eval_set` the demo's own eval of it, which read the average,
is reused):

    python benchmarks/ema_stage.py --run runs/sw_gpu --config experiments/sw_gpu.py \
        --stage sft --decay 0 --out runs/sw_gpu/sft_weights

Writes OUT/eval_params/ and OUT/eval_ema/ (report.json, answers.jsonl, grids) and OUT/table.md.
Reports already in OUT are reused.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WEIGHTS = ("params", "ema")


def _kept_average(wd: str) -> bool:
    cfg = json.load(open(os.path.join(wd, "config.json")))
    return float(cfg.get("train", {}).get("ema_decay", 0.0) or 0.0) > 0


def main(argv):
    del argv
    from absl import flags, logging
    from grpo_seeds import scores, stage_configs
    from stage_variant import demo_config_for, retrain_stage, stage_steps
    from mmada_jax import demo
    from mmada_jax.evals.io import read_jsonl
    from mmada_jax.evals.paired import paired_changes
    f = flags.FLAGS
    if f["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)
    if f.stage not in ("pretrain", "sft", "grpo"):
        raise ValueError(f"--stage {f.stage!r}: pretrain, sft or grpo")
    if f.stage == "grpo" and f.decay > 0:
        raise ValueError("--stage grpo: only with --decay 0 (a UniGRPO stage with an average is "
                         "trained by grpo_seeds.py --overrides 'train.ema_decay=D')")

    dc = demo_config_for(f.config, f.variant, f.eval_set)
    variant = dc.variant
    os.makedirs(f.out, exist_ok=True)
    if f.decay > 0:
        _, wd, _ = retrain_stage(demo_config_for(f.config, f.variant, f.eval_set), f.run,
                                 f.stage, f.out, variant, f.steps or stage_steps(f.run, f.stage),
                                 f"train.ema_decay={f.decay}")
    else:
        wd = os.path.join(f.run, f.stage)
    cfgs, tokens = stage_configs(dc, os.path.join(f.out, "eval_ws"), variant, f.run)
    dirs = {w: os.path.join(f.out, f"eval_{w}") for w in WEIGHTS}
    if f.decay == 0 and not f.eval_set and _kept_average(wd) \
            and os.path.exists(os.path.join(wd, "eval", "report.json")):
        dirs["ema"] = os.path.join(wd, "eval")  # the demo's own eval read the average
    for w in WEIGHTS:
        demo.run_eval(f.stage, cfgs[f.stage], wd, dc.eval, tokens, dirs[w], weights=w)
    a = read_jsonl(os.path.join(dirs["params"], "answers.jsonl"))
    b = read_jsonl(os.path.join(dirs["ema"], "answers.jsonl"))
    eval_desc = " ".join(f.eval_set) or "the demo's"
    lines = [f"{f.stage} of {os.path.abspath(wd)}; eval: {eval_desc}",
             "", "| weights | reasoning (sound steps) | VQA | VQA per kind | t2i object F1 "
             "(GenEval-style) | POPE F1 |", "|---|---|---|---|---|---|"]
    for w in WEIGHTS:
        s = scores(os.path.join(dirs[w], "report.json"))
        per_kind = json.load(open(os.path.join(dirs[w], "report.json")))["results"].get(
            "vqa", {}).get("per_kind")
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        lines.append(f"| {w} | {fmt(s['reasoning'])} ({fmt(s['sound'])}) | {fmt(s['vqa'])} | "
                     f"{per_kind} | {fmt(s['object_f1'])} ({fmt(s['geneval'])}) | "
                     f"{fmt(s['pope_f1'])} |")
    lines.append("")
    for c in paired_changes(a, b, ("reasoning", "vqa", "pope")):
        lines.append(f"- params -> ema: {c.describe()}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(f.out, "table.md"), "w") as fh:
        fh.write(text)
    print(text, flush=True)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "The run's demo config (default: the "
                                    "variant's demo_config).", lock_config=False)
    flags.DEFINE_string("run", "runs/demo", "A finished demo run (its stages and assets/).")
    flags.DEFINE_string("stage", "sft", "pretrain or sft; grpo with --decay 0.")
    flags.DEFINE_float("decay", 0.995, "train.ema_decay of the retrained stage; 0: evaluate "
                       "the run's own stage (which must have kept an average).")
    flags.DEFINE_integer("steps", 0, "Steps of the retrained stage (default: the run's).")
    flags.DEFINE_string("out", "runs/ema_stage", "Output directory.")
    flags.DEFINE_string("variant", "cpu", "Demo variant, without --config.")
    flags.DEFINE_multi_string("eval_set", [], "Eval override key=value (config.eval).")
    app.run(main)
