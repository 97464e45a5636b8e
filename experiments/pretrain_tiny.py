"""Tiny masked-diffusion pre-training on synthetic rows: the CPU smoke test of the trainer.

    python -m mmada_jax.train --config experiments/pretrain_tiny.py --workdir runs/tiny
"""

from mmada_jax.config import base_config


def get_config(arg=None):
    c = base_config()
    c.name = "pretrain_tiny"
    c.model.dtype = "float32"
    c.seq_len = 48
    c.data.max_text_len = 12
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 5
    c.train.steps = 20
    c.train.ckpt_every = 10
    c.train.log_every = 5
    return c
