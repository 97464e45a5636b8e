"""UniGRPO entry point (spec section 5; mmada_jax/rl/trainer.py).

    python -m mmada_jax.grpo --config experiments/sw_grpo.py --workdir runs/demo/grpo \
        [--config.rl.init_from=runs/demo/sft] [--config.rl.steps=50] [--stop_after=N]

Policy and frozen reference start from `config.rl.init_from` (a workdir with checkpoints);
resumes from the newest checkpoint in `--workdir`. Progress lines and TensorBoard scalars
(`WORKDIR/tensorboard/grpo`): loss, KL, clip fraction, and per task reward mean / spread, pass
rate, kept fraction, response length; `WORKDIR/metrics.jsonl` holds the same.
"""

from __future__ import annotations

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (with a "
                                          "'rl' section).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.")
_STOP_AFTER = flags.DEFINE_integer("stop_after", None, "Stop after this many outer steps.")
_BUDGET = flags.DEFINE_float("budget_s", None, "Stop before a step would end past this many "
                             "seconds of training.")


def main(argv):
    del argv
    from absl import logging
    if flags.FLAGS["verbosity"].present == 0:  # progress lines only (as mmada_jax.train)
        logging.set_verbosity(logging.WARNING)
    if _CONFIG.value is None or _WORKDIR.value is None:
        raise app.UsageError("--config and --workdir are required")
    from mmada_jax.rl.trainer import UniGRPO
    UniGRPO(_CONFIG.value, _WORKDIR.value).run(_STOP_AFTER.value, budget_s=_BUDGET.value)


if __name__ == "__main__":
    app.run(main)
