"""Mesh from config and the one logical-axis rule table.

Parameters and activations are annotated with logical names (`embed`, `mlp`, `heads`, `vocab`,
`activation_batch`, ...); `LOGICAL_RULES` maps them onto the mesh axes `data`, `fsdp`, `tensor`.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mmada_jax.config import mesh_shape

MESH_AXES = ("data", "fsdp", "tensor")

# logical name -> mesh axis (or tuple of axes, or None for replicated)
LOGICAL_RULES = (
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_heads", "tensor"),
    ("activation_kv", None),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv", None),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("layers", None),
    ("length", None),  # absolute position table rows (model.abs_pos_embed)
    ("norm", None),
)


def make_mesh(mesh_cfg, devices=None) -> Mesh:
    """A (data, fsdp, tensor) mesh with Auto axis types, sizes from `config.mesh`."""
    devices = jax.devices() if devices is None else devices
    sizes = mesh_shape(mesh_cfg, len(devices))
    shape = tuple(sizes[a] for a in MESH_AXES)
    try:
        from jax.experimental import mesh_utils
        dev = mesh_utils.create_device_mesh(shape, devices=devices)
    except Exception:  # non-TPU topologies / fake devices
        dev = np.asarray(devices).reshape(shape)
    return Mesh(dev, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


@contextlib.contextmanager
def use_mesh(mesh: Mesh, rules=LOGICAL_RULES):
    """Activate the mesh and the logical rules (for with_logical_constraint inside jit)."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield


def logical_to_sharding(logical_tree, mesh: Mesh, rules=LOGICAL_RULES):
    """Tree of logical PartitionSpecs -> tree of NamedShardings."""
    return nn.logical_to_mesh_sharding(logical_tree, mesh, rules)


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Rows over (data, fsdp), everything else replicated."""
    return NamedSharding(mesh, P(("data", "fsdp"), *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())
