"""Seeded ShapesWorld image batches for tokenizer training and evaluation.

Batch `k` of process `p` depends only on (seed, k, p), so the iterator state is just the batch
counter and resuming reproduces the data order exactly.
"""

from __future__ import annotations

import numpy as np


def to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> float32 in [-1, 1]."""
    return images_uint8.astype(np.float32) / 127.5 - 1.0


def render_scenes(rng: np.random.Generator, n: int, image_size: int, split: str,
                  max_objects: int = 4):
    """n random scenes of 1..max_objects objects and their images (float32 [n, S, S, 3] in
    [-1, 1])."""
    from mmada_jax.data.shapesworld import scenes as sc
    scenes = [sc.random_scene(rng, split, max_objects=max_objects) for _ in range(n)]
    images = np.stack([sc.render(s, image_size) for s in scenes])
    return to_unit_range(images), scenes


class ShapesWorldImages:
    """Endless batches {'images': float32 [B_local, S, S, 3]}; B_local = batch_size / processes."""

    def __init__(self, batch_size: int, image_size: int = 64, seed: int = 0,
                 split: str = "train", process_index: int = 0, process_count: int = 1,
                 max_objects: int = 4):
        if batch_size % process_count:
            raise ValueError(f"ShapesWorldImages: batch_size {batch_size} is not divisible by "
                             f"the {process_count} processes")
        self.local_batch = batch_size // process_count
        self.image_size, self.seed, self.split = image_size, seed, split
        self.process_index, self.max_objects = process_index, max_objects
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        rng = np.random.default_rng([self.seed, self.step, self.process_index])
        self.step += 1
        images, _ = render_scenes(rng, self.local_batch, self.image_size, self.split,
                                  self.max_objects)
        return {"images": images}

    def get_state(self) -> dict:
        return {"step": self.step}

    def set_state(self, state: dict) -> None:
        self.step = int(state["step"])


def heldout_set(n: int, image_size: int = 64, seed: int = 12345, split: str = "test",
                max_objects: int = 4):
    """A fixed evaluation set: (images float32 [n, S, S, 3], scenes). The test split holds
    (color, shape) pairs training never shows."""
    return render_scenes(np.random.default_rng([seed, 999_983]), n, image_size, split,
                         max_objects)
