"""Tiny masked-diffusion training on the real ShapesWorld pipeline (byte tokenizer, pooled-color
image codes): the CPU check that the trainer runs on real data and resumes exactly.

    python -m mmada_jax.train --config experiments/shapesworld_tiny.py --workdir runs/sw_tiny
"""

from mmada_jax.config import base_config
from mmada_jax.data.pipeline import data_config


def get_config(arg=None):
    c = base_config()
    c.name = "shapesworld_tiny"
    c.model.dtype = "float32"
    c.tokens.base_vocab_size = 256
    c.tokens.codebook_size = 64
    c.data = data_config()
    c.data.data_dir = "runs/data"
    c.data.max_text_len = 24
    c.data.num_image_tokens = 16
    c.data.image_tokenizer = "pool"
    c.data.shapesworld.num_train = 200
    c.data.shapesworld.num_test = 20
    c.data.think_prompt = False  # byte tokens: the thinking prefix alone is 240 of them
    c.seq_len = 192  # VQA rows: image + question + CoT answer in bytes
    c.model.max_seq_len = 256
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 2
    c.train.steps = 20
    c.train.log_every = 1
    c.train.ckpt_every = 5
    return c
