"""Show-o's `magvitv2` tokenizer checkpoint <-> an Orbax parameter checkpoint of this project.

The key mapping and layout conversion are the tokenizer's own
(`mmada_jax.tokenizers.magvit_convert`); this module moves files. The tokenizer is small
(~0.1B parameters), so it is converted as one state dict.

    import_magvit("/ckpt/magvitv2", "runs/magvit")     # -> runs/magvit/params (Orbax)
    export_magvit("runs/magvit", "/out/magvitv2")      # -> model.safetensors + config.json
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

CONFIG_NAME = "magvit_config.json"      # this project's MagvitConfig
HF_CONFIG_NAME = "hf_config.json"       # the release's config.json, kept for export
_WEIGHT_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors",
                 "pytorch_model.bin", "diffusion_pytorch_model.bin")


def _weights_file(src: str) -> str:
    if os.path.isfile(src):
        return src
    for name in _WEIGHT_NAMES:
        p = os.path.join(src, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{src}: no MAGVIT-v2 weights ({', '.join(_WEIGHT_NAMES)})")


def import_magvit(src: str, out_dir: str, cfg=None, prefix: str = "", log=print) -> str:
    """Released magvitv2 weights (file or directory) -> `out_dir/params` (Orbax) + configs."""
    import orbax.checkpoint as ocp
    from mmada_jax.tokenizers.magvit import MagvitConfig
    from mmada_jax.tokenizers.magvit_convert import load_showo_magvit
    cfg = cfg or MagvitConfig.showo()
    path = _weights_file(src)
    params = load_showo_magvit(path, cfg, prefix=prefix)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, "params")
    if os.path.exists(target):
        shutil.rmtree(target)
    with ocp.StandardCheckpointer() as ck:
        ck.save(target, params)
    with open(os.path.join(out_dir, CONFIG_NAME), "w") as f:
        json.dump(cfg.to_dict(), f, indent=2)
    hf_cfg = os.path.join(src, "config.json") if os.path.isdir(src) else None
    if hf_cfg and os.path.isfile(hf_cfg):
        shutil.copy(hf_cfg, os.path.join(out_dir, HF_CONFIG_NAME))
    n = sum(int(np.prod(x.shape)) for x in __import__("jax").tree_util.tree_leaves(params))
    log(f"MAGVIT-v2: {path} -> {target} ({n / 1e6:.1f}M parameters)")
    return target


def load_magvit(ckpt_dir: str):
    """(MagvitConfig, params) from an `import_magvit` output directory."""
    import jax
    import orbax.checkpoint as ocp
    from mmada_jax.tokenizers.magvit import MagvitConfig, param_shapes
    with open(os.path.join(ckpt_dir, CONFIG_NAME)) as f:
        cfg = MagvitConfig.from_dict(json.load(f))
    abstract = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                                      param_shapes(cfg))
    with ocp.StandardCheckpointer() as ck:
        params = ck.restore(os.path.join(os.path.abspath(ckpt_dir), "params"), abstract)
    return cfg, params


def export_magvit(ckpt_dir: str, out_dir: str, dtype=np.float32, log=print) -> str:
    """`import_magvit` output -> `out_dir/model.safetensors` (Show-o keys, PyTorch layout,
    metadata format=pt) and config.json (the release's, when it was kept at import)."""
    from safetensors.numpy import save_file
    from mmada_jax.tokenizers.magvit_convert import flax_to_showo
    cfg, params = load_magvit(ckpt_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.safetensors")
    save_file(flax_to_showo(params, cfg, dtype), path, metadata={"format": "pt"})
    kept = os.path.join(ckpt_dir, HF_CONFIG_NAME)
    if os.path.isfile(kept):
        shutil.copy(kept, os.path.join(out_dir, "config.json"))
    else:
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(dict(cfg.to_dict(), _class_name="MAGVITv2"), f, indent=2)
    log(f"MAGVIT-v2: {ckpt_dir} -> {path}")
    return path
