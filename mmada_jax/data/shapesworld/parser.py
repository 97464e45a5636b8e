"""Reads a ShapesWorld scene back from pixels: the judge for GenEval/WISE-style scores and the
image reward.

Per image: the background is the per-channel median (scenes cover well under half the image), and
its offset from the true background corrects a global color shift. Per grid cell: the object's
color is the palette color whose offset from the background points the same way (cosine) as the
cell's most salient pixels (blur shrinks that offset but keeps its direction); the pixel coverage (alpha)
along that color is compared with the rendered template of every (shape, size) and with "empty";
at several blur levels, and the nearest wins. Robust to blur, noise and small color shifts.
"""

from __future__ import annotations

import functools

import numpy as np

from mmada_jax.data.shapesworld import scenes as sc

_PALETTE = np.asarray([sc.COLORS[c] for c in sc.COLOR_NAMES], np.float32)


# Template blur levels (Gaussian sigma in pixels at 64 px, scaled with the image size).
BLUR_LEVELS = (0.0, 0.8, 1.6, 2.4)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the first two axes, edge-padded (float32)."""
    x = np.asarray(x, np.float32)
    if sigma <= 0:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    pad = [(r, r), (0, 0)] + [(0, 0)] * (x.ndim - 2)
    xp = np.pad(x, pad, mode="edge")
    x = sum(k[i] * xp[i:i + x.shape[0]] for i in range(2 * r + 1))
    pad = [(0, 0), (r, r)] + [(0, 0)] * (x.ndim - 2)
    xp = np.pad(x, pad, mode="edge")
    return sum(k[i] * xp[:, i:i + x.shape[1]] for i in range(2 * r + 1))


@functools.lru_cache(maxsize=16)
def _templates(image_size: int) -> dict:
    """(row, col) -> (names [(shape, size) or None], templates [K, h, w]): every shape and size
    at every blur level, plus the empty template."""
    out = {}
    e = sc.cell_bounds(image_size)
    for r in range(sc.GRID):
        for c in range(sc.GRID):
            names, temps = [None], [np.zeros((e[r + 1] - e[r], e[c + 1] - e[c]), np.float32)]
            for s in sc.SHAPES:
                for z in sc.SIZE_NAMES:
                    obj = sc.Scene((sc.Obj(s, "white", z, r, c),))
                    full = _alpha_image(obj, image_size)
                    for b in BLUR_LEVELS:
                        t = gaussian_blur(full, b * image_size / 64)[e[r]:e[r + 1], e[c]:e[c + 1]]
                        names.append((s, z))
                        temps.append(t)
            out[r, c] = (names, np.stack(temps).astype(np.float32))
    return out


def _alpha_image(scene: sc.Scene, image_size: int) -> np.ndarray:
    a = np.zeros((image_size, image_size), np.float32)
    e = sc.cell_bounds(image_size)
    for o in scene.objects:
        a[e[o.row]:e[o.row + 1], e[o.col]:e[o.col + 1]] = sc.cell_alpha(
            o.shape, o.size, o.row, o.col, image_size)
    return a


def to_uint8_range(image) -> np.ndarray:
    """float32 [S, S, 3] in 0..255 from uint8 or from float in [-1, 1]."""
    x = np.asarray(image)
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] != x.shape[1]:
        raise ValueError(f"parse_scene: expected a square [S, S, 3] image, got {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32)
    return (np.clip(x.astype(np.float32), -1, 1) + 1) * 127.5


def parse_scene(image) -> sc.Scene:
    """Objects (shape, color, size, cell) found in `image` (uint8, or float in [-1, 1])."""
    x = to_uint8_range(image)
    size = x.shape[0]
    bg = np.median(x.reshape(-1, 3), axis=0)
    palette = _PALETTE + (bg - np.asarray(sc.BACKGROUND, np.float32))
    edges = sc.cell_bounds(size)
    temps = _templates(size)
    objs = []
    for r in range(sc.GRID):
        for c in range(sc.GRID):
            pix = x[edges[r]:edges[r + 1], edges[c]:edges[c + 1]] - bg
            d = np.linalg.norm(pix, axis=-1)
            top = np.percentile(d, 99)
            core = pix[d >= 0.8 * top].mean(axis=0)
            # Blur scales the color's offset from the background but keeps its direction.
            dirs = palette - bg
            cos = dirs @ core / (np.linalg.norm(dirs, axis=-1) * np.linalg.norm(core) + 1e-6)
            ci = int(np.argmax(cos))
            direction = palette[ci] - bg
            alpha = np.clip(pix @ direction / float(direction @ direction), 0.0, 1.0)
            names, t = temps[r, c]
            err = ((t - alpha[None]) ** 2).sum(axis=(1, 2))
            k = int(np.argmin(err))
            if names[k] is not None:
                shape, z = names[k]
                objs.append(sc.Obj(shape, sc.COLOR_NAMES[ci], z, r, c))
    return sc.Scene(tuple(objs))


# ---------------------------------------------------------------------------- scores
def _keys(scene: sc.Scene, with_size: bool = True) -> set:
    return {(o.shape, o.color, o.size if with_size else "", o.cell) for o in scene.objects}


def scene_correct(parsed: sc.Scene, target: sc.Scene) -> bool:
    """Every object right (shape, color, size, cell) and nothing extra."""
    return _keys(parsed) == _keys(target)


def score(parsed: sc.Scene, target: sc.Scene) -> dict:
    """GenEval-style checks of a generated scene against the prompt's scene, each in {0, 1}
    (`object_f1` in [0, 1]): exact scene, count, per-attribute agreement, object F1."""
    p, t = _keys(parsed), _keys(target)
    tp = len(p & t)
    f1 = 2 * tp / (len(p) + len(t)) if (p or t) else 1.0
    by_cell_p = {o.cell: o for o in parsed.objects}
    cells_ok = {o.cell for o in target.objects} == set(by_cell_p)
    colors = all(by_cell_p.get(o.cell) and by_cell_p[o.cell].color == o.color
                 for o in target.objects)
    shapes = all(by_cell_p.get(o.cell) and by_cell_p[o.cell].shape == o.shape
                 for o in target.objects)
    multiset = sorted((o.shape, o.color) for o in parsed.objects) == sorted(
        (o.shape, o.color) for o in target.objects)
    return dict(exact=float(p == t), count=float(len(parsed.objects) == len(target.objects)),
                position=float(cells_ok), color=float(colors and cells_ok),
                shape=float(shapes and cells_ok), objects=float(multiset), object_f1=f1)


def image_reward(image, target: sc.Scene) -> float:
    """Reward in [0, 1] for an image generated from `target`'s prompt: object F1 of the parse."""
    return score(parse_scene(image), target)["object_f1"]
