"""Compile programs for a TPU topology on a CPU host (libtpu installed, no TPU attached).

    mesh = topology_mesh("v5e:2x2", (2, 1, 2), ("data", "fsdp", "tensor"))
    compiled = compile_for_topology(train_step, *abstract_args, mesh=mesh)

Kernels are traced with interpret mode off, so the Pallas kernels lower through Mosaic.
`compile_attention_for_topology` does this for the attention kernels (forward and backward).
"""

from __future__ import annotations

import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import topologies
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mmada_jax.kernels import common


def topology_mesh(topology: str = "v5e:2x2", mesh_shape: Sequence[int] | None = None,
                  axis_names: Sequence[str] = ("data", "fsdp", "tensor")) -> Mesh:
    """A mesh (Auto axes) over the compile-only devices of a TPU topology like 'v5e:2x2'."""
    # compile-only: no TPU is opened, so other libtpu users on this host must not block us
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    devices = topologies.get_topology_desc(topology, "tpu").devices
    shape = tuple(mesh_shape) if mesh_shape is not None else (len(devices),) + (1,) * (len(axis_names) - 1)
    if int(np.prod(shape)) != len(devices):
        raise ValueError(f"mesh shape {shape} does not cover the {len(devices)} devices of {topology}")
    return Mesh(np.asarray(devices).reshape(shape), tuple(axis_names),
                axis_types=(jax.sharding.AxisType.Auto,) * len(axis_names))


def compile_for_topology(fn, *abstract_args, mesh: Mesh, **jit_kwargs):
    """jax.jit(fn).trace(...).lower().compile() under `mesh`, kernels not interpreted.

    abstract_args: jax.ShapeDtypeStruct with shardings on `mesh` (or pytrees of them).
    """
    with jax.set_mesh(mesh), common.interpret_mode(False):
        return jax.jit(fn, **jit_kwargs).trace(*abstract_args).lower().compile()


def compile_attention_for_topology(topology: str = "v5e:2x2", *, batch: int = 4,
                                   seq_len: int = 1539, heads: int = 4, head_dim: int = 128,
                                   dtype=jnp.bfloat16, impl: str = "pallas_tpu",
                                   mesh_shape: Sequence[int] = (2, 1, 2), segments: bool = True):
    """Compile the attention forward and forward+backward (with key mask and segment ids) for
    a TPU topology, batch over (data, fsdp) and heads over tensor. Returns (fwd, fwd_bwd)."""
    from mmada_jax.model.attention import attention
    mesh = topology_mesh(topology, mesh_shape)
    qkv = jax.ShapeDtypeStruct((batch, seq_len, heads, head_dim), dtype,
                               sharding=NamedSharding(mesh, P(("data", "fsdp"), None, "tensor", None)))
    row_sharding = NamedSharding(mesh, P(("data", "fsdp"), None))
    km = jax.ShapeDtypeStruct((batch, seq_len), jnp.bool_, sharding=row_sharding)
    seg = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32, sharding=row_sharding)

    def fwd(q, k, v, key_mask, segment_ids):
        return attention(q, k, v, key_mask=key_mask,
                         segment_ids=segment_ids if segments else None, impl=impl)

    def loss(q, k, v, key_mask, segment_ids):
        return jnp.sum(fwd(q, k, v, key_mask, segment_ids).astype(jnp.float32) ** 2)

    fwd_bwd = jax.value_and_grad(loss, argnums=(0, 1, 2))
    args = (qkv, qkv, qkv, km, seg)
    return (compile_for_topology(fwd, *args, mesh=mesh),
            compile_for_topology(fwd_bwd, *args, mesh=mesh))
