"""UniGRPO's objective on held-out prompts for a finished demo run (or a `grpo_seeds.py` seed): the
SFT policy and a UniGRPO checkpoint sampled as the rollouts are, on the same test-split prompts
with the same keys (`mmada_jax/rl/heldout.py`; the demo writes the same into
grpo/heldout_rewards.json when `rl.heldout_chunks` > 0).

    python benchmarks/grpo_heldout_rewards.py --run runs/demo [--grpo runs/grpo_seeds/seed1/grpo] \
        [--chunks 12] [--tasks reasoning,vqa] [--seed 1] [--overrides 'rl.group_size=8'] \
        --out heldout.json

Prints one line per task (reward SFT -> UniGRPO, pass rate, prompts up / down, sign-test p) and
writes {before, after, compare} to --out.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    del argv
    import jax
    import ml_collections
    from absl import flags, logging
    from grpo_seeds import stage_configs
    from mmada_jax import demo
    from mmada_jax.rl.heldout import compare_heldout, describe_heldout, heldout_rewards
    from mmada_jax.rl.trainer import UniGRPO
    from mmada_jax.training.checkpoint import restore_params
    f = flags.FLAGS
    if f["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)
    grpo_dir = f.grpo or os.path.join(f.run, "grpo")
    for need in (os.path.join(f.run, "sft", "DONE"), os.path.join(f.run, "assets"),
                 os.path.join(grpo_dir, "checkpoints")):
        if not os.path.exists(need):
            raise FileNotFoundError(f"grpo_heldout_rewards: no {need} (--run: a finished demo "
                                    "run with its assets and SFT stage; --grpo: a UniGRPO "
                                    "workdir with checkpoints)")
    dc = ml_collections.ConfigDict(demo.demo_config(f.variant).to_dict())
    if f.tasks:
        demo.add_stage_override(dc, f"rl.heldout_tasks={f.tasks}", ("grpo",))
    if f.overrides:
        demo.add_stage_override(dc, f.overrides, ("grpo",))
    with tempfile.TemporaryDirectory() as ws:
        cfgs, (text_tok, image_tok) = stage_configs(dc, ws, f.variant, f.run)
        cfg = cfgs["grpo"]
        cfg.rl.init_from = os.path.join(f.run, "sft")
        tr = UniGRPO(cfg, os.path.join(ws, "grpo"), jax.devices()[:1], text_tok, image_tok)
        trained, step = restore_params(grpo_dir, tr.setup.abstract_state)
        print(f"[heldout] UniGRPO parameters from {grpo_dir} step {step}", flush=True)
        before = heldout_rewards(tr, tr.ref_params, f.chunks, f.seed)
        after = heldout_rewards(tr, trained, f.chunks, f.seed)
        tr.logger.close()
    out = dict(run=f.run, grpo=grpo_dir, grpo_step=int(step), chunks=f.chunks, seed=f.seed,
               before=before, after=after, compare=compare_heldout(before, after))
    print("\n".join(describe_heldout(out["compare"])), flush=True)
    if f.out:
        os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
        with open(f.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("run", "runs/demo", "a finished demo run (assets/, sft/)")
    flags.DEFINE_string("grpo", "", "a UniGRPO workdir (default RUN/grpo)")
    flags.DEFINE_string("variant", "cpu", "the demo variant the run used")
    flags.DEFINE_integer("chunks", 12, "chunks of one step's prompts per task")
    flags.DEFINE_string("tasks", "", "comma-separated tasks (default: rl.heldout_tasks)")
    flags.DEFINE_integer("seed", 1, "held-out prompt and sampling seed")
    flags.DEFINE_string("overrides", "", "grpo stage overrides ('key=value;...')")
    flags.DEFINE_string("out", "", "JSON file to write")
    app.run(main)
