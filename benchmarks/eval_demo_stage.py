"""Re-evaluate one finished stage of a demo run with other eval settings (sampler, set sizes),
without retraining: the stage's newest checkpoint (or `--step N`), the run's own tokenizers.

    python benchmarks/eval_demo_stage.py --config experiments/sw_gpu.py --workdir runs/sw_gpu \
        --stage sft --set text_sampler.steps=32 --set text_sampler.block_length=32 \
        --out runs/sw_gpu/sft/eval_b32

Writes OUT/report.json, OUT/answers.jsonl (every text answer, scored) and the sample grids, as
the demo's own eval does; prints the summary line.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv):
    del argv
    import jax
    from absl import flags
    from mmada_jax import assets, demo
    from mmada_jax.evaluate import Evaluator, apply_sets, summary_line
    from mmada_jax.rl.trainer import split_config
    from mmada_jax.training.checkpoint import restore_weights
    from mmada_jax.training.loop import build
    f = flags.FLAGS
    dc = f.config if f.config is not None else demo.demo_config()
    if f.stage not in demo.STAGES:
        raise ValueError(f"--stage {f.stage!r}: known {demo.STAGES}")
    stage_dir = os.path.join(f.workdir, f.stage)
    if not os.path.exists(os.path.join(stage_dir, "DONE")):
        raise FileNotFoundError(f"{stage_dir}: no finished stage (no DONE file)")
    demo.enable_compilation_cache(os.path.join(f.workdir, "jax_cache"))
    cfg = demo._stage_config(f.stage, dc.variant, f.workdir, dc)  # pylint: disable=protected-access
    if dc.image_tokenizer.kind == "pool":
        cfg.data.image_tokenizer = "pool"
    base, _ = split_config(cfg)
    setup = build(base, jax.devices()[:1])
    params, step, which = restore_weights(stage_dir, setup.abstract_state,
                                          None if f.step is None or f.step < 0 else f.step,
                                          f.weights)
    ecfg = apply_sets(dc.eval, f.set)
    ev = Evaluator(base, setup, params, assets.text_tokenizer(cfg), assets.image_tokenizer(cfg),
                   ecfg)
    ev.source_step, ev.weights = step, which
    out = f.out or os.path.join(stage_dir, "eval_rerun")
    res = ev.run(out, f.stage)["results"]
    print(f"[eval {f.stage} {' '.join(f.set)}] step {step}: {summary_line(res)}; "
          f"vqa per kind {res.get('vqa', {}).get('per_kind')} -> {out}", flush=True)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "The run's demo config.", lock_config=False)
    flags.DEFINE_string("workdir", None, "The demo run directory.", required=True)
    flags.DEFINE_string("stage", "sft", "pretrain, sft or grpo.")
    flags.DEFINE_multi_string("set", [], "Eval override key=value (config.eval).")
    flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the newest).")
    from mmada_jax.training.checkpoint import WEIGHTS
    flags.DEFINE_enum("weights", "auto", WEIGHTS, "The parameters' moving "
                      "average, the last step's, or the average when the stage kept one.")
    flags.DEFINE_string("out", None, "Output directory (default WORKDIR/STAGE/eval_rerun).")
    app.run(main)
