"""One stage of a finished demo run trained again with config overrides, from the run's own
previous stage and for the run's number of steps (`--steps` to change), then evaluated with the
demo's eval: what a setting does to one stage, without rerunning the whole demo.

    python benchmarks/stage_variant.py --run runs/demo --stage sft --out runs/sft_asked_last \
        --overrides 'data.shapesworld.vqa_cot=asked_last' \
        [--eval_set n_reasoning=384 --eval_set n_vqa=384]

Writes OUT/STAGE/ (checkpoints, metrics.jsonl, DONE) and OUT/eval/ (report.json,
answers.jsonl); prints the summary line. A finished stage or eval in OUT is reused. Compare two
evals item by item with `mmada_jax.evals.paired.paired_changes` (as `grpo_seeds.py` does).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def stage_steps(run: str, stage: str) -> int:
    done = os.path.join(run, stage, "DONE")
    if not os.path.exists(done):
        raise FileNotFoundError(f"--run {run}: no {done} (a finished stage)")
    return int(json.load(open(done))["steps"])


def retrain_stage(dc, run: str, stage: str, out: str, variant: str, steps: int,
                  overrides: str = ""):
    """`stage` of `run` trained again in OUT/STAGE with `overrides` ('key=value;...') added to
    the stage's; returns (stage config, workdir, tokens)."""
    import jax
    from grpo_seeds import stage_configs
    from mmada_jax import assets, demo
    from mmada_jax.training.loop import train
    if stage not in ("pretrain", "sft"):
        raise ValueError(f"stage {stage!r}: pretrain or sft (UniGRPO: grpo_seeds.py)")
    if overrides:
        demo.add_stage_override(dc, overrides, (stage,))
    cfgs, tokens = stage_configs(dc, out, variant, run)
    cfg = cfgs[stage]
    cfg.train.steps = steps
    if stage == "sft":
        cfg.train.init_from = os.path.join(run, "pretrain")
    wd = os.path.join(out, stage)
    if not os.path.exists(os.path.join(wd, "DONE")):
        res = train(cfg, wd, batch_source=assets.batch_source(cfg, None, *tokens),
                    devices=jax.devices()[:1])
        with open(os.path.join(wd, "DONE"), "w") as f:
            json.dump(dict(steps=int(res["step"]), overrides=overrides), f)
    return cfg, wd, tokens


def demo_config_for(config, variant: str, eval_set):
    import ml_collections
    from mmada_jax import demo
    from mmada_jax.evaluate import apply_sets
    dc = (ml_collections.ConfigDict(config.to_dict()) if config is not None
          else demo.demo_config(variant))
    if eval_set:
        dc.eval = apply_sets(dc.eval, eval_set)
    return dc


def main(argv):
    del argv
    from absl import flags, logging
    from mmada_jax import demo
    f = flags.FLAGS
    if f["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)
    dc = demo_config_for(f.config, f.variant, f.eval_set)
    cfg, wd, tokens = retrain_stage(dc, f.run, f.stage, f.out, dc.variant,
                                    f.steps or stage_steps(f.run, f.stage), f.overrides)
    demo.run_eval(f.stage, cfg, wd, dc.eval, tokens, os.path.join(f.out, "eval"))


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "The run's demo config (default: the "
                                    "variant's demo_config).", lock_config=False)
    flags.DEFINE_string("run", "runs/demo", "A finished demo run (its stages and assets/).")
    flags.DEFINE_string("stage", "sft", "pretrain or sft.")
    flags.DEFINE_string("overrides", "", "Stage config overrides, 'key=value;...'.")
    flags.DEFINE_integer("steps", 0, "Steps of the retrained stage (default: the run's).")
    flags.DEFINE_string("out", "runs/stage_variant", "Output directory.")
    flags.DEFINE_string("variant", "cpu", "Demo variant, without --config.")
    flags.DEFINE_multi_string("eval_set", [], "Eval override key=value (config.eval).")
    app.run(main)
