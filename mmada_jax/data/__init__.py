"""Training-data sources, selected by `config.data.source` through a small registry.

A batch source is an iterator of host-local numpy batches (see docs/CONTRACTS.md) with
`get_state()` / `set_state(state)` for checkpointing. Sources register by name; modules that
implement them are imported lazily so that the model never needs the data stack.
"""

from __future__ import annotations

import importlib
from typing import Callable

_SOURCES: dict[str, Callable] = {}
# name -> module that registers it on import (lazy, keeps grain/tfds out of model imports)
_LAZY = {
    "synthetic": "mmada_jax.data.synthetic",
    "shapesworld": "mmada_jax.data.pipeline",
    "mixture": "mmada_jax.data.pipeline",
}


def register_batch_source(name: str):
    """Decorator: `@register_batch_source("mine") def build(config, layout) -> iterator`."""
    def deco(fn):
        _SOURCES[name] = fn
        return fn
    return deco


def build_batch_source(config, layout, **kwargs):
    name = config.data.source
    if name not in _SOURCES and name in _LAZY:
        importlib.import_module(_LAZY[name])
    if name not in _SOURCES:
        raise ValueError(f"config.data.source: unknown batch source {name!r}; "
                         f"known: {sorted(set(_SOURCES) | set(_LAZY))}")
    return _SOURCES[name](config, layout, **kwargs)
