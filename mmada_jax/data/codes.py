"""Image -> code functions `codes_fn(images [B, H, W, 3] float in [-1, 1]) -> int [B, h, w]`, and a
pre-tokenized code cache.

`pool_quantize_codes` / `pool_quantize_decode` are a cheap deterministic TEST/DEMO stand-in for the
MAGVIT tokenizer (average-pool, then uniform color quantization); never a training tokenizer.
`jit_codes_fn` wraps a real jitted encoder. `CodeCache` stores one code grid per source index in a
.npy file that the pipeline reads instead of decoding images.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np


def _levels(codebook_size: int) -> int:
    n = int(round(codebook_size ** (1 / 3)))
    while n ** 3 > codebook_size:
        n -= 1
    if n < 2:
        raise ValueError(f"pool_quantize: codebook_size {codebook_size} < 8")
    return n


def pool_quantize_codes(images, grid: int, codebook_size: int) -> np.ndarray:
    """TEST/DEMO stand-in tokenizer: [B, H, W, 3] in [-1, 1] -> int32 [B, grid, grid]; each code is
    the pooled RGB quantized to n = floor(cbrt(codebook)) levels per channel (r * n^2 + g * n + b)."""
    x = np.asarray(images, np.float32)
    b, h, w, _ = x.shape
    if h % grid or w % grid:
        raise ValueError(f"pool_quantize: image {h}x{w} not divisible by grid {grid}")
    pooled = x.reshape(b, grid, h // grid, grid, w // grid, 3).mean(axis=(2, 4))
    n = _levels(codebook_size)
    q = np.clip(np.round((pooled + 1) / 2 * (n - 1)), 0, n - 1).astype(np.int32)
    return q[..., 0] * n * n + q[..., 1] * n + q[..., 2]


def pool_quantize_decode(codes, image_size: int, codebook_size: int) -> np.ndarray:
    """Inverse of `pool_quantize_codes` up to quantization: [B, g, g] -> [B, S, S, 3] in [-1, 1]."""
    c = np.asarray(codes, np.int64)
    n = _levels(codebook_size)
    rgb = np.stack([c // (n * n), (c // n) % n, c % n], -1).astype(np.float32) / (n - 1) * 2 - 1
    r = image_size // c.shape[1]
    return np.repeat(np.repeat(rgb, r, axis=1), r, axis=2)


class PoolQuantize:
    """Picklable `codes_fn` for tests and demos (see `pool_quantize_codes`)."""

    def __init__(self, grid: int, codebook_size: int):
        self.grid, self.codebook_size = grid, codebook_size

    def __call__(self, images):
        return pool_quantize_codes(images, self.grid, self.codebook_size)

    def __repr__(self):
        return f"PoolQuantize(grid={self.grid},codebook={self.codebook_size})"


def jit_codes_fn(encode: Callable, batch_size: int | None = None) -> Callable:
    """Wrap `encode(images) -> codes` (e.g. the MAGVIT encoder with its params bound) in jax.jit;
    with `batch_size`, inputs are zero-padded to it so one compiled shape serves every batch."""
    import jax  # pylint: disable=g-import-not-at-top
    f = jax.jit(encode)

    def codes_fn(images):
        x = np.asarray(images, np.float32)
        n = x.shape[0]
        if batch_size and n < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
        return np.asarray(f(x))[:n].astype(np.int32)
    return codes_fn


# ---------------------------------------------------------------------------- cache
class CodeCache:
    """Codes for every index of one source: `<path>.npy` int32 [N, h, w] plus `<path>.json`
    (valid flags and a description). Read with `cache[i]` (None where the image was bad)."""

    def __init__(self, path: str):
        if not os.path.exists(path + ".npy"):
            raise FileNotFoundError(
                f"code cache {path}.npy not found; build it with "
                "mmada_jax.data.codes.build_code_cache(...) or set the component's codes_cache ''")
        self.path = path
        self._codes = None
        with open(path + ".json") as f:
            meta = json.load(f)
        self.valid = np.asarray(meta["valid"], bool)
        self.description = meta.get("description", "")

    def __len__(self):
        return len(self.valid)

    def __getitem__(self, i):
        if self._codes is None:
            self._codes = np.load(self.path + ".npy", mmap_mode="r")
        return np.asarray(self._codes[i]) if self.valid[i] else None

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_codes"] = None
        return d


def build_code_cache(images_at: Callable[[int], np.ndarray | None], n: int,
                     codes_fn: Callable, path: str, batch_size: int = 64,
                     description: str = "") -> CodeCache:
    """Run `codes_fn` over `images_at(i)` (float [S, S, 3] in [-1, 1], or None for a bad image)
    for i < n, in order, and save the cache at `path`."""
    codes, valid = None, np.zeros((n,), bool)
    for lo in range(0, n, batch_size):
        idx = list(range(lo, min(n, lo + batch_size)))
        imgs = [images_at(i) for i in idx]
        good = [j for j, im in zip(idx, imgs) if im is not None]
        if not good:
            continue
        out = np.asarray(codes_fn(np.stack([im for im in imgs if im is not None])), np.int32)
        if codes is None:
            codes = np.zeros((n, *out.shape[1:]), np.int32)
        codes[good] = out
        valid[good] = True
    if codes is None:
        raise ValueError(f"build_code_cache: no decodable image among {n}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.save(path + ".npy", codes)
    with open(path + ".json", "w") as f:
        json.dump(dict(valid=valid.tolist(), description=description), f)
    return CodeCache(path)
