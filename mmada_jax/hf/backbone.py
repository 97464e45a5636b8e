"""Released MMaDA safetensors <-> this project's sharded parameters, streamed tensor by tensor.

Import: every parameter is built shard by shard on its NamedSharding (as
`jax.make_array_from_callback` does, but putting each shard on its device before reading the
next); the callback reads, for the shard a device needs, only the rows/columns (and, for
layer-stacked arrays, only the layers) of the release tensors that fall in it (`safe_open(...).get_slice`),
converts them ([out, in] -> [in, out], dtype) and hands them to the device. The host never holds
more than one shard (a slice of one release tensor, or of N layer tensors for a stacked array).

Export: parameters are fetched one release tensor at a time (one layer of a stacked array),
converted back and written into size-bounded shards with the index json and config.json.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Iterator

import jax
import numpy as np

from mmada_jax.hf import keys as keys_lib
from mmada_jax.hf.safetensors_io import ShardedReader, ShardedWriter
from mmada_jax.training.checkpoint import flatten_with_names


class CheckpointFormatError(ValueError):
    """The release checkpoint lacks tensors or has tensors of the wrong shape."""


def _fmt(items, limit=12):
    items = list(items)
    s = ", ".join(items[:limit])
    return s + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def check_checkpoint(reader: ShardedReader, model_cfg, prefix: str = keys_lib.PREFIX,
                     strict: bool = True) -> None:
    """Raise CheckpointFormatError naming every missing, mis-shaped (or, if strict, unexpected)
    tensor of `reader` against the release naming for `model_cfg`."""
    want = keys_lib.release_shapes(model_cfg, prefix)
    have = set(reader.keys())
    missing = [k for k in want if k not in have]
    misshaped = [f"{k}: {reader.shape(k)} in checkpoint, expected {want[k]}"
                 for k in want if k in have and tuple(reader.shape(k)) != tuple(want[k])]
    unexpected = sorted(have - set(want)) if strict else []
    if missing or misshaped or unexpected:
        lines = [f"checkpoint {reader.directory} does not match the model "
                 f"(d_model={model_cfg.d_model}, n_layers={model_cfg.n_layers}, "
                 f"vocab={model_cfg.vocab_size}):"]
        for title, items in (("missing", missing), ("mis-shaped", misshaped),
                             ("unexpected", unexpected)):
            if items:
                lines.append(f"  {title} ({len(items)}): {_fmt(items)}")
        raise CheckpointFormatError("\n".join(lines))


def _slice_bounds(s: slice, n: int) -> tuple[int, int]:
    start, stop, step = s.indices(n)
    if step != 1:
        raise ValueError("strided shards are not supported")
    return start, stop


def _reader_callback(reader: ShardedReader, entry: keys_lib.Entry, dtype) -> Callable:
    """index (tuple of slices into the Flax-shaped array) -> numpy block of that shard."""
    shape = entry.flax_shape
    dtype = np.dtype(dtype)

    def read_one(key, idx):
        # idx: slices into one (unstacked) Flax-shaped tensor
        t_idx = tuple(reversed(idx)) if entry.transpose else tuple(idx)
        x = reader.read(key, t_idx)
        if entry.transpose:
            x = x.T
        return np.ascontiguousarray(x.astype(dtype))

    def callback(index):
        index = tuple(index) + (slice(None),) * (len(shape) - len(index))
        if not entry.stacked:
            return read_one(entry.keys[0], index)
        lo, hi = _slice_bounds(index[0], shape[0])
        inner = index[1:]
        block = None
        for j, layer in enumerate(range(lo, hi)):  # one layer tensor (slice) at a time
            x = read_one(entry.keys[layer], inner)
            if block is None:
                block = np.empty((hi - lo,) + x.shape, dtype)
            block[j] = x
        return block

    return callback


def make_array_shard_by_shard(shape, sharding, callback):
    """Like jax.make_array_from_callback, but each shard is read, put on its device and
    released before the next is read (the host holds one shard at a time)."""
    arrays = []
    for device, index in sharding.addressable_devices_indices_map(tuple(shape)).items():
        block = callback(index)
        arrays.append(jax.device_put(block, device).block_until_ready())
        del block
    return jax.make_array_from_single_device_arrays(tuple(shape), sharding, arrays)


def import_params(reader: ShardedReader, model_cfg, abstract_params, *,
                  prefix: str = keys_lib.PREFIX, strict: bool = True,
                  on_param: Callable | None = None) -> dict:
    """Release tensors -> parameter tree shaped, typed and sharded like `abstract_params`
    (ShapeDtypeStructs with NamedShardings). Checks names and shapes first."""
    check_checkpoint(reader, model_cfg, prefix, strict)
    flat = flatten_with_names(abstract_params)
    out = {}
    for entry in keys_lib.entries(model_cfg, prefix):
        name = "/".join(entry.path)
        if name not in flat:
            raise CheckpointFormatError(f"model has no parameter {name} (for {entry.keys[0]}); "
                                        f"model parameters: {_fmt(sorted(flat))}")
        a = flat[name]
        if tuple(a.shape) != entry.flax_shape:
            raise CheckpointFormatError(f"{name}: model shape {tuple(a.shape)} but the release "
                                        f"tensors give {entry.flax_shape}")
        arr = make_array_shard_by_shard(a.shape, a.sharding,
                                        _reader_callback(reader, entry, a.dtype))
        node = out
        for p in entry.path[:-1]:
            node = node.setdefault(p, {})
        node[entry.path[-1]] = arr
        if on_param is not None:
            on_param(name, arr)
    extra = sorted(set(flat) - {"/".join(e.path) for e in keys_lib.entries(model_cfg, prefix)})
    if extra:
        raise CheckpointFormatError(f"model parameters without a release tensor: {_fmt(extra)}")
    return out


def _fetch(x) -> np.ndarray:
    """A global jax.Array (or numpy) to host numpy, gathering across processes if needed."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def iter_release_tensors(params, model_cfg, dtype=None,
                         prefix: str = keys_lib.PREFIX) -> Iterator[tuple[str, np.ndarray]]:
    """(release key, numpy [out, in] tensor) one at a time; stacked arrays layer by layer."""
    flat = flatten_with_names(params)
    for entry in keys_lib.entries(model_cfg, prefix):
        name = "/".join(entry.path)
        if name not in flat:
            raise CheckpointFormatError(f"export: parameter {name} missing from the tree")
        x = flat[name]
        if tuple(x.shape) != entry.flax_shape:
            raise CheckpointFormatError(f"export: {name} has shape {tuple(x.shape)}, expected "
                                        f"{entry.flax_shape}")
        for i, key in enumerate(entry.keys):
            t = _fetch(x[i] if entry.stacked else x)
            if entry.transpose:
                t = t.T
            if dtype is not None:
                t = t.astype(np.dtype(dtype))
            yield key, np.ascontiguousarray(t)


def export_params(params, model_cfg, out_dir: str, *, layout=None, tokens=None,
                  dtype="bfloat16", max_shard_bytes="5GB", prefix: str = keys_lib.PREFIX) -> dict:
    """Write params as the release's sharded safetensors + index + config.json (process 0
    writes; every process takes part in gathering). Returns the index dict."""
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
    write = jax.process_index() == 0
    np_dtype = np.dtype(dtype) if dtype is not None else None
    writer = ShardedWriter(out_dir, max_shard_bytes) if write else None
    for key, t in iter_release_tensors(params, model_cfg, np_dtype, prefix):
        if write:
            writer.add(key, t)
    if not write:
        return {}
    index = writer.close()
    torch_dtype = str(np_dtype) if np_dtype is not None else "float32"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(keys_lib.hf_config(model_cfg, layout, torch_dtype, tokens), f, indent=2,
                  sort_keys=True)
    return index
