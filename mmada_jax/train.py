"""Masked-diffusion training entry point.

    python -m mmada_jax.train --config experiments/pretrain_tiny.py --workdir runs/tiny \
        [--config.optim.lr=1e-4] [--stop_after=N]

Resumes automatically from the newest checkpoint in `--workdir`; SIGTERM/SIGINT save and exit.
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.")
_STOP_AFTER = flags.DEFINE_integer("stop_after", None,
                                   "Stop (with a checkpoint) after this many steps of this run.")


def quiet_logs():
    """Orbax and absl log every checkpoint file at INFO; keep the console to progress lines."""
    if flags.FLAGS["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)


def main(argv):
    del argv
    quiet_logs()
    from mmada_jax import distributed
    distributed.initialize()  # multi-host from the environment; a no-op for one process
    from mmada_jax.training.loop import train
    if _CONFIG.value is None or _WORKDIR.value is None:
        raise app.UsageError("--config and --workdir are required")
    train(_CONFIG.value, _WORKDIR.value, stop_after=_STOP_AFTER.value)


if __name__ == "__main__":
    app.run(main)
