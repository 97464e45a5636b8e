"""Sharded safetensors checkpoints (Hugging Face layout), one tensor (or slice) at a time.

    reader = ShardedReader(dir)          # model.safetensors.index.json or model.safetensors
    reader.shape(key), reader.dtype(key)
    reader.read(key, index=(slice(0, 64), slice(None)))   # reads only that slice

    with ShardedWriter(out_dir, max_shard_bytes=5 * 10**9) as w:
        w.add(key, np_array)             # buffered up to one shard, then written
    # -> model-0000i-of-0000n.safetensors + model.safetensors.index.json

Nothing here holds more than one tensor (reader) or one shard (writer) in host memory.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
           "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
           "BOOL": "bool"}


def parse_size(s) -> int:
    """'5GB' / '500MB' / '2GiB' / 12345 -> bytes."""
    if isinstance(s, (int, float)):
        return int(s)
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?i?B)?\s*", str(s), re.I)
    if not m:
        raise ValueError(f"shard size {s!r}: expected e.g. 5GB, 500MB or a byte count")
    unit = (m.group(2) or "B").upper()
    base = 1024 if "I" in unit else 1000
    power = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[0]]
    return int(float(m.group(1)) * base ** power)


class ShardedReader:
    """Lazy access to the tensors of a safetensors checkpoint directory (or a single file)."""

    def __init__(self, path: str):
        from safetensors import safe_open
        self._safe_open = safe_open
        path = os.fspath(path)
        if os.path.isdir(path):
            index = os.path.join(path, INDEX)
            single = os.path.join(path, SINGLE)
            if os.path.isfile(index):
                with open(index) as f:
                    data = json.load(f)
                if "weight_map" not in data:
                    raise ValueError(f"{index}: no 'weight_map'")
                self.weight_map = {k: os.path.join(path, v) for k, v in data["weight_map"].items()}
            elif os.path.isfile(single):
                self.weight_map = None
                self._single = single
            else:
                raise FileNotFoundError(f"{path}: neither {INDEX} nor {SINGLE} found")
            self.directory = path
        elif os.path.isfile(path):
            self.weight_map, self._single, self.directory = None, path, os.path.dirname(path)
        else:
            raise FileNotFoundError(f"checkpoint not found: {path}")
        if self.weight_map is None:
            with safe_open(self._single, "numpy") as f:
                self.weight_map = {k: self._single for k in f.keys()}
        missing_files = sorted({p for p in self.weight_map.values() if not os.path.isfile(p)})
        if missing_files:
            raise FileNotFoundError(f"{self.directory}: shard files named in the index are "
                                    f"missing: {[os.path.basename(p) for p in missing_files]}")
        self._meta = None

    def keys(self) -> list[str]:
        return list(self.weight_map)

    def _header(self) -> dict:
        """{key: (shape, dtype name)} from the shard headers (no tensor data read)."""
        if self._meta is None:
            meta = {}
            for path in sorted(set(self.weight_map.values())):
                with open(path, "rb") as f:
                    n = int.from_bytes(f.read(8), "little")
                    header = json.loads(f.read(n))
                for k, v in header.items():
                    if k != "__metadata__":
                        meta[k] = (tuple(v["shape"]), _DTYPES.get(v["dtype"], v["dtype"]))
            self._meta = meta
        return self._meta

    def shape(self, key: str) -> tuple:
        return self._header()[key][0]

    def dtype(self, key: str) -> str:
        return self._header()[key][1]

    def read(self, key: str, index=None) -> np.ndarray:
        """The tensor `key` (or `index`, a tuple of slices, of it) as numpy; only that is read."""
        if key not in self.weight_map:
            raise KeyError(f"{self.directory}: tensor {key!r} not in the checkpoint")
        with self._safe_open(self.weight_map[key], "numpy") as f:
            if index is None:
                return f.get_tensor(key)
            return np.asarray(f.get_slice(key)[tuple(index)])


class ShardedWriter:
    """Writes tensors into size-bounded safetensors shards plus the index json."""

    def __init__(self, directory: str, max_shard_bytes=5 * 10 ** 9, metadata=None):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.max_shard_bytes = parse_size(max_shard_bytes)
        self.metadata = {"format": "pt", **(metadata or {})}
        self._buf: dict[str, np.ndarray] = {}
        self._buf_bytes = 0
        self._files: list[list[str]] = []  # keys per written shard, in order
        self._tmp_names: list[str] = []
        self.total_size = 0

    def add(self, key: str, array: np.ndarray) -> None:
        if key in self._buf or any(key in keys for keys in self._files):
            raise ValueError(f"tensor {key!r} written twice")
        a = np.ascontiguousarray(array)
        if self._buf and self._buf_bytes + a.nbytes > self.max_shard_bytes:
            self._flush()
        self._buf[key] = a
        self._buf_bytes += a.nbytes
        self.total_size += a.nbytes

    def _flush(self) -> None:
        if not self._buf:
            return
        from safetensors.numpy import save_file
        name = f".shard-{len(self._files):05d}.tmp.safetensors"
        save_file(self._buf, os.path.join(self.directory, name), metadata=self.metadata)
        self._files.append(list(self._buf))
        self._tmp_names.append(name)
        self._buf, self._buf_bytes = {}, 0

    def close(self) -> dict:
        """Write the last shard, rename all to model-0000i-of-0000n.safetensors, write the index."""
        self._flush()
        n = len(self._files)
        weight_map = {}
        for i, (tmp, keys) in enumerate(zip(self._tmp_names, self._files)):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(os.path.join(self.directory, tmp), os.path.join(self.directory, final))
            for k in keys:
                weight_map[k] = final
        index = {"metadata": {"total_size": self.total_size}, "weight_map": weight_map}
        with open(os.path.join(self.directory, INDEX), "w") as f:
            json.dump(index, f, indent=2)
        return index

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
