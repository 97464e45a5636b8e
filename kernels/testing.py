"""Random inputs and masks for the kernel tests and benchmarks (numpy RNG, fresh per call)."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from mmada_jax.kernels import mask as mask_lib

MASK_KINDS = ("none", "key_pad", "left_pad", "segments", "empty_rows", "block_causal")


def random_qkv(rng: np.random.Generator, b, lq, lk, h, d, dtype=jnp.float32):
    q = rng.standard_normal((b, lq, h, d), np.float32)
    k = rng.standard_normal((b, lk, h, d), np.float32)
    v = rng.standard_normal((b, lk, h, d), np.float32)
    return tuple(jnp.asarray(x, dtype) for x in (q, k, v))


def random_segments(rng: np.random.Generator, b: int, length: int, n: int) -> np.ndarray:
    """int32 [b, length]: n contiguous segments per row at random boundaries."""
    out = np.zeros((b, length), np.int32)
    for r in range(b):
        cuts = np.sort(rng.choice(np.arange(1, length), size=min(n, length) - 1, replace=False))
        out[r] = np.searchsorted(cuts, np.arange(length), side="right")
    return out


def random_mask(rng: np.random.Generator, kind: str, b: int, lq: int, lk: int):
    """An AttentionMask of the given kind (see MASK_KINDS), or None for 'none'."""
    if kind == "none":
        return None
    if kind in ("key_pad", "left_pad"):
        lengths = rng.integers(1, lk + 1, size=b)
        return mask_lib.make_mask(key_mask=mask_lib.key_mask_from_lengths(
            lengths, lk, left_padded=kind == "left_pad"))
    if kind == "segments":  # packed rows with right padding; needs lq == lk
        seg = random_segments(rng, b, lq, 3)
        pad = rng.integers(0, lq // 4 + 1, size=b)
        km = np.arange(lk)[None, :] < (lk - pad)[:, None]
        seg = np.where(km, seg, 3)
        return mask_lib.make_mask(key_mask=jnp.asarray(km), segment_ids=jnp.asarray(seg))
    if kind == "empty_rows":  # row 0 fully padded; queries of segment 9 see no key
        km = rng.random((b, lk)) > 0.3
        km[0] = False
        q_seg = np.where(rng.random((b, lq)) > 0.2, 0, 9).astype(np.int32)
        kv_seg = np.zeros((b, lk), np.int32)
        return mask_lib.make_mask(key_mask=jnp.asarray(km), segment_ids=jnp.asarray(q_seg),
                                  kv_segment_ids=jnp.asarray(kv_seg))
    if kind == "block_causal":
        km = np.arange(lk)[None, :] < rng.integers(1, lk + 1, size=b)[:, None]
        return mask_lib.AttentionMask(key_mask=jnp.asarray(km),
                                      block_causal=int(rng.integers(5, 40)))
    raise ValueError(f"unknown mask kind {kind!r}; choose from {MASK_KINDS}")


def rel_err(a, b) -> float:
    """||a - b|| / ||b|| in float64."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
