"""Image decoding and preprocessing: resize the shorter side, center crop, normalize to [-1, 1]."""

from __future__ import annotations

import io

import numpy as np


class BadImage(ValueError):
    """An image that cannot be decoded."""


def decode(data: bytes) -> np.ndarray:
    """Encoded bytes (PNG, JPEG, ...) -> uint8 [H, W, 3]; raises BadImage."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises many types for corrupt data
        raise BadImage(f"undecodable image ({type(e).__name__}: {e})") from e


def load(path: str) -> np.ndarray:
    """Image file -> uint8 [H, W, 3]; FileNotFoundError or BadImage."""
    with open(path, "rb") as f:
        return decode(f.read())


def resize_center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3]: shorter side to `size` (bicubic), center crop."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    im = Image.fromarray(img).resize((nw, nh), Image.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


def normalize(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1]."""
    return img.astype(np.float32) / 127.5 - 1.0


def preprocess(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> float32 [size, size, 3] in [-1, 1]."""
    if img.ndim != 3 or img.shape[-1] != 3:
        raise BadImage(f"expected an [H, W, 3] image, got shape {img.shape}")
    return normalize(resize_center_crop(img, size))
