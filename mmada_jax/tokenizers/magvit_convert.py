"""Show-o `magvitv2` state dicts <-> Flax MAGVIT-v2 parameters.

Key mapping (mechanical, one rule per path segment):
  encoder.down.{i}.block.{j}.conv1.weight  <->  encoder/down_{i}/block_{j}/conv1/kernel
  decoder.up.{i}.upsample.conv.bias        <->  decoder/up_{i}/upsample/conv/bias
  *.norm*.weight                           <->  */norm*/scale   (GroupNorm)
Conv weights are OIHW in PyTorch and HWIO in Flax. The quantizer has no parameters; its buffers
`quantize.embedding` [2^bits, bits] and `quantize.power_vals` [bits] are checked on import (they
fix the code bit order) and written on export.

    params = load_showo_magvit("magvitv2/model.safetensors", MagvitConfig.showo())
    save_showo_magvit(params, MagvitConfig.showo(), "out.safetensors")
"""

from __future__ import annotations

import os
import re
from typing import Mapping

import jax
import numpy as np

from mmada_jax.tokenizers.magvit import MagvitConfig, param_shapes

BUFFER_KEYS = ("quantize.embedding", "quantize.power_vals")
_LEVEL = re.compile(r"^(down|up)_(\d+)$")
_BLOCK = re.compile(r"^block_(\d+)$")


def flax_path_to_key(path: tuple[str, ...]) -> str:
    """('encoder', 'down_0', 'block_1', 'norm1', 'scale') -> 'encoder.down.0.block.1.norm1.weight'."""
    out = []
    for k, seg in enumerate(path):
        m = _LEVEL.match(seg)
        b = _BLOCK.match(seg)
        if m:
            out += [m.group(1), m.group(2)]
        elif b and k > 0 and _LEVEL.match(path[k - 1]):
            out += ["block", b.group(1)]
        elif k == len(path) - 1 and seg in ("kernel", "scale"):
            out.append("weight")
        else:
            out.append(seg)
    return ".".join(out)


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(flax_shape) == 4:  # HWIO -> OIHW
        h, w, i, o = flax_shape
        return (o, i, h, w)
    return tuple(flax_shape)


def key_table(cfg: MagvitConfig) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """Show-o key -> (Flax path, PyTorch shape) for every parameter of `cfg`."""
    table = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(param_shapes(cfg))[0]:
        p = tuple(k.key for k in path)
        table[flax_path_to_key(p)] = (p, _torch_shape(leaf.shape))
    return table


def _buffers(bits: int) -> dict[str, np.ndarray]:
    codes = np.arange(2 ** bits)[:, None]
    bit = (codes >> np.arange(bits - 1, -1, -1)[None, :]) & 1
    return {"quantize.embedding": (2 * bit - 1).astype(np.float32),
            "quantize.power_vals": (2 ** np.arange(bits - 1, -1, -1)).astype(np.int64)}


def _fmt(items: list[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    return head + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def showo_to_flax(state_dict: Mapping[str, np.ndarray], cfg: MagvitConfig, prefix: str = "",
                  source: str = "state dict", require_buffers: bool = True):
    """Convert a Show-o magvitv2 state dict (numpy arrays, PyTorch layout) to a Flax params tree.

    Every key must be consumed and every shape match; otherwise a ValueError lists the missing,
    unexpected and mis-shaped keys of `source`. `prefix` (e.g. 'vq_model.') is stripped first.
    """
    sd = {}
    for k, v in state_dict.items():
        if prefix:
            if not k.startswith(prefix):
                continue
            k = k[len(prefix):]
        sd[k] = np.asarray(v)
    table = key_table(cfg)
    expected = set(table) | (set(BUFFER_KEYS) if require_buffers else set())
    missing = sorted(expected - set(sd))
    unexpected = sorted(set(sd) - set(table) - set(BUFFER_KEYS))
    misshaped, bad_values = [], []
    for k, (_, shape) in table.items():
        if k in sd and tuple(sd[k].shape) != shape:
            misshaped.append(f"{k}: got {tuple(sd[k].shape)}, expected {shape}")
    for k, ref in _buffers(cfg.bits).items():
        if k in sd:
            if sd[k].shape != ref.shape:
                misshaped.append(f"{k}: got {tuple(sd[k].shape)}, expected {ref.shape}")
            elif not np.array_equal(sd[k].astype(ref.dtype), ref):
                bad_values.append(f"{k} (not the channel-0-most-significant bit table of "
                                  f"{cfg.bits} bits)")
    if missing or unexpected or misshaped or bad_values:
        lines = [f"MAGVIT-v2 import from {source} failed ({len(sd)} keys, "
                 f"config bits={cfg.bits}, ch={cfg.ch}, ch_mult={cfg.ch_mult}):"]
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("mis-shaped", misshaped), ("wrong values", bad_values)):
            if items:
                lines.append(f"  {title} ({len(items)}): {_fmt(items)}")
        raise ValueError("\n".join(lines))

    dtype = np.dtype(cfg.param_dtype)
    params: dict = {}
    for k, (path, _) in table.items():
        w = sd[k].astype(np.float32)
        if w.ndim == 4:
            w = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        node = params
        for seg in path[:-1]:
            node = node.setdefault(seg, {})
        node[path[-1]] = w.astype(dtype)
    return params


def flax_to_showo(params, cfg: MagvitConfig, dtype=np.float32) -> dict[str, np.ndarray]:
    """Flax params -> Show-o state dict (numpy, PyTorch layout, buffers included)."""
    table = key_table(cfg)
    flat = {tuple(k.key for k in p): v
            for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    want = {path for path, _ in table.values()}
    if set(flat) != want:
        miss = sorted("/".join(p) for p in want - set(flat))
        extra = sorted("/".join(p) for p in set(flat) - want)
        raise ValueError(f"MAGVIT-v2 export: params do not match the config: missing "
                         f"[{_fmt(miss)}], unexpected [{_fmt(extra)}]")
    sd = {}
    for k, (path, shape) in table.items():
        w = np.asarray(jax.device_get(flat[path]), np.float32)
        if w.ndim == 4:
            w = w.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if w.shape != shape:
            raise ValueError(f"MAGVIT-v2 export: {'/'.join(path)} has shape {w.shape}, "
                             f"expected {shape} for {k}")
        sd[k] = np.ascontiguousarray(w.astype(dtype))
    sd.update(_buffers(cfg.bits))
    return sd


# ------------------------------------------------------------------------------ files
def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """`.safetensors` via safetensors; `.bin`/`.pth`/`.pt`/`.ckpt` via torch when installed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file
        return dict(load_file(path))
    if path.endswith((".bin", ".pth", ".pt", ".ckpt")):
        try:
            import torch
        except ImportError as e:
            raise ImportError(f"{path}: reading PyTorch checkpoints needs torch, which is not "
                              "installed; install torch or convert the file to .safetensors") from e
        obj = torch.load(path, map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model"):
            if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
                obj = obj[wrapper]
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(obj).__name__}")
        out = {}
        for k, t in obj.items():
            if hasattr(t, "detach"):
                t = t.detach().cpu()
                out[k] = (t.float() if t.is_floating_point() else t).numpy()
        return out
    raise ValueError(f"{path}: unknown checkpoint format (expected .safetensors, .bin or .pth)")


def load_showo_magvit(path: str | os.PathLike, cfg: MagvitConfig | None = None,
                      prefix: str = ""):
    """Read a released magvitv2 checkpoint and return Flax params for `cfg` (default: Show-o)."""
    cfg = cfg or MagvitConfig.showo()
    return showo_to_flax(read_state_dict(path), cfg, prefix=prefix, source=os.fspath(path))


def save_showo_magvit(params, cfg: MagvitConfig, path: str | os.PathLike, dtype=np.float32):
    """Write Flax params as a Show-o-layout `.safetensors` file."""
    from safetensors.numpy import save_file
    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"save_showo_magvit: {path} should end in .safetensors")
    save_file(flax_to_showo(params, cfg, dtype), path)
    return path
