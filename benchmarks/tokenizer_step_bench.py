"""Forward+backward time of one MAGVIT-v2 training step for tokenizer architectures (where the
CPU time goes): reconstruction + LFQ entropy loss, batch 16 of 64x64 images, median of reps.

    JAX_PLATFORMS=cpu python benchmarks/tokenizer_step_bench.py [--batch 16] [--size 64] \
        [--variants wide,lite,lite_dec] [--reps 5]

Variants are `experiments/tokenizer_shapesworld.py` architectures: `wide` (channels 16-32-32, a
res block per level), `lite` (16-16-32, no res block at full resolution: the default),
`lite_dec` (lite, but the decoder keeps its full-resolution block).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from mmada_jax.tokenizers import lfq
from mmada_jax.tokenizers.magvit import MAGVITv2, MagvitConfig, init_params

BASE = dict(ch=16, bits=10, num_groups=8)
VARIANTS = {
    "wide": dict(ch_mult=(1, 2, 2), num_res_blocks=(1, 1, 1), dec_ch_mult=(1, 2, 2),
                 dec_num_res_blocks=(1, 1, 1)),
    "lite": dict(ch_mult=(1, 1, 2), num_res_blocks=(0, 1, 1), dec_ch_mult=(1, 1, 2),
                 dec_num_res_blocks=(0, 1, 1)),
    "lite_dec": dict(ch_mult=(1, 1, 2), num_res_blocks=(0, 1, 1), dec_ch_mult=(1, 1, 2),
                     dec_num_res_blocks=(1, 1, 1)),
}


def step_ms(arch: dict, batch: int, size: int, reps: int) -> float:
    cfg = MagvitConfig(**BASE, **arch)
    model, params = MAGVITv2(cfg), init_params(cfg)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)), jnp.float32)

    def loss(p, x):
        out = model.apply({"params": p}, x)
        return jnp.mean((out["recon"] - x) ** 2) + lfq.lfq_losses(out["z"])["entropy_loss"]

    grad = jax.jit(jax.value_and_grad(loss))
    jax.block_until_ready(grad(params, x))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(grad(params, x))
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--variants", default="wide,lite,lite_dec")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    print(f"{jax.devices()[0].device_kind}, batch {a.batch}, {a.size} px")
    for name in a.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known {sorted(VARIANTS)}")
        print(f"{name}: {step_ms(VARIANTS[name], a.batch, a.size, a.reps):.0f} ms", flush=True)


if __name__ == "__main__":
    main()
