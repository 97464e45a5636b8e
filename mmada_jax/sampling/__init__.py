"""Samplers for MMaDA: LLaDA text, MaskGIT images, multimodal understanding; compiled loops.

Samplers register by name (`register_sampler`), mask schedules and remasking strategies too
(`schedules.register_mask_schedule`, `text.register_remasking`), so a research fork adds a file.
Importing this package needs neither grain nor tfds.
"""

from __future__ import annotations

from typing import Callable

from mmada_jax.sampling.logits import FnLogits, ModelLogits, as_logits, make_logits_fn
from mmada_jax.sampling.schedules import (get_mask_schedule, register_mask_schedule,
                                          transfer_counts)
from mmada_jax.sampling.text import (TextOutput, TextSamplerConfig, generate_text,
                                     register_remasking)

_SAMPLERS: dict[str, Callable] = {}


def register_sampler(name: str, fn: Callable | None = None):
    """Register a sampler entry point under `name` (decorator or direct call)."""
    def deco(f):
        _SAMPLERS[name] = f
        return f
    return deco(fn) if fn is not None else deco


def get_sampler(name: str) -> Callable:
    if name not in _SAMPLERS:
        raise ValueError(f"sampler {name!r} unknown; known: {sorted(_SAMPLERS)}")
    return _SAMPLERS[name]


register_sampler("llada", generate_text)

__all__ = ["FnLogits", "ModelLogits", "TextOutput", "TextSamplerConfig", "as_logits",
           "generate_text", "get_mask_schedule", "get_sampler", "make_logits_fn",
           "register_mask_schedule", "register_remasking", "register_sampler", "transfer_counts"]

from mmada_jax.sampling.image import ImageSamplerConfig, generate_image  # noqa: E402
from mmada_jax.sampling.mmu import understand  # noqa: E402

register_sampler("maskgit", generate_image)
register_sampler("mmu", understand)
__all__ += ["ImageSamplerConfig", "generate_image", "understand"]
