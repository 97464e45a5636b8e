"""FLOP accounting for tokens/s, TFLOP/s per device and MFU.

Training FLOPs per token = 6 * (matmul parameters: blocks + LM head; the embedding lookup is no
matmul) + 12 * n_layers * L * n_heads * head_dim for bidirectional attention, counted in full
(QK^T and PV, forward 4 L H Dh per token, backward twice that).
"""

from __future__ import annotations

import jax

# Dense bf16 peak per chip, TFLOP/s.
PEAK_TFLOPS = {
    "h100": 989.0, "h200": 989.0, "a100": 312.0, "l4": 121.0,
    "tpu v4": 275.0, "tpu v5 lite": 197.0, "tpu v5e": 197.0, "tpu v5p": 459.0, "tpu v5": 459.0,
    "tpu v6 lite": 918.0, "tpu v6e": 918.0, "tpu7x": 2307.0,
}


def train_flops_per_token(m, seq_len: int) -> float:
    hd = m.head_dim or m.d_model // m.n_heads
    d, f, n = m.d_model, m.mlp_dim, m.n_layers
    per_layer = d * (m.n_heads * hd) * 2 + d * (m.n_kv_heads * hd) * 2 + 3 * d * f
    matmul_params = n * per_layer + d * m.vocab_size
    attn = 12.0 * n * seq_len * m.n_heads * hd
    return 6.0 * matmul_params + attn


def peak_tflops_per_device(override: float = 0.0) -> float | None:
    if override:
        return float(override)
    kind = jax.devices()[0].device_kind.lower()
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key in kind:
            return PEAK_TFLOPS[key]
    return None
