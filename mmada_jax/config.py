"""The one config system: ml_collections ConfigDicts from experiment files, plus validation.

An experiment is a Python file in `experiments/` whose `get_config(arg=None)` returns a
ConfigDict built on `base_config()`. Command lines override fields with absl's config flags:

    python -m mmada_jax.train --config experiments/pretrain_tiny.py --config.optim.lr=1e-4

`validate(config, num_devices)` fails early with a message that names the offending field.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os

from ml_collections import ConfigDict

# ---------------------------------------------------------------------------- model presets
# Exact released dimensions for 8b (spec section 1); 1b is a LLaDA-style 1B width.
MODEL_PRESETS = {
    "tiny": dict(d_model=64, n_layers=2, n_heads=4, n_kv_heads=4, mlp_dim=192, max_seq_len=512),
    "small": dict(d_model=256, n_layers=4, n_heads=4, n_kv_heads=4, mlp_dim=768,
                  max_seq_len=1024),
    "1b": dict(d_model=2048, n_layers=22, n_heads=32, n_kv_heads=32, mlp_dim=5634,
               max_seq_len=4096),
    "8b": dict(d_model=4096, n_layers=32, n_heads=32, n_kv_heads=32, mlp_dim=12288,
               max_seq_len=4096),
}


def model_config(preset: str = "tiny", **overrides) -> ConfigDict:
    """Backbone hyper-parameters. `vocab_size` 0 means 'take the token layout's model vocab'."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"model preset {preset!r} unknown; known: {sorted(MODEL_PRESETS)}")
    c = ConfigDict(dict(
        preset=preset,
        vocab_size=0,
        head_dim=0,  # 0: d_model // n_heads
        rope_theta=500000.0,
        norm_eps=1e-5,
        init_std=0.02,
        param_dtype="float32",
        dtype="bfloat16",
        remat="none",  # none | full | save_dots | save_attn_out | ... (mmada_jax.model.remat)
        attention_impl="xla",  # xla | auto | pallas | cudnn ... (mmada_jax.model.attention)
        scan_layers=True,
        logits_dtype="float32",
        # learned absolute position embeddings added to the tokens' (not in the release's
        # architecture; HF import/export needs it off)
        abs_pos_embed=False,
        # the SwiGLU gradient: auto | xla | split (mmada_jax.model.layers.swiglu_fn)
        swiglu_grad="auto",
        **MODEL_PRESETS[preset],
    ))
    c.update(overrides)
    return c


def base_config() -> ConfigDict:
    """Every field the trainer reads, with defaults. Experiments start from this."""
    c = ConfigDict()
    c.name = "experiment"
    c.model = model_config("tiny")
    c.tokens = ConfigDict(dict(preset="custom", base_vocab_size=256, codebook_size=64,
                               model_vocab_size=0))
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    c.seq_len = 64
    # Task name -> objective and batch share. Order is the row order of the batch.
    c.tasks = ConfigDict(dict(
        t2i=ConfigDict(dict(objective="image_mask", schedule="cosine", coeff=1.0, batch_size=2)),
        lm=ConfigDict(dict(objective="text_lm", coeff=0.1, batch_size=2)),
        mmu=ConfigDict(dict(objective="text_answer", coeff=1.0, batch_size=2)),
    ))
    c.optim = ConfigDict(dict(
        name="adamw", lr=1e-4, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, clip_norm=1.0,
        schedule="warmup_cosine", warmup_steps=5000, min_lr_scale=0.1, decay_steps=0))
    c.train = ConfigDict(dict(
        steps=10, grad_accum=1, seed=0, log_every=1, ckpt_every=100, keep_ckpts=3,
        async_ckpt=True, max_nonfinite_in_row=5, skip_nonfinite=True, peak_tflops_per_device=0.0,
        text_eps=1e-3, progress=True, tensorboard=True, eval_every=0,
        init_from="",  # a workdir whose latest checkpoint's params start a fresh run
        # > 0: keep a moving average of the parameters (training/ema.py); evaluation, export
        # and the next stage's init_from then read it instead of the last step's parameters
        ema_decay=0.0,
        # a lead-in phase before the run (`mmada_jax/training/lead_in.py`): `steps` steps of
        # this config changed by `overrides` ('key=value;...'), in WORKDIR/lead_in; the run
        # then starts from its parameters. 0 steps: none
        lead_in=ConfigDict(dict(steps=0, overrides="")),
    ))
    c.data = ConfigDict(dict(source="synthetic", seed=0))
    # Stage-specific sections read by their own entry points (UniGRPO: mmada_jax.grpo;
    # evaluation: mmada_jax.evaluate); empty for plain masked-diffusion training.
    c.rl = ConfigDict()
    c.eval = ConfigDict()
    return c


# ---------------------------------------------------------------------------- loading
def load_config_file(path: str, arg: str | None = None) -> ConfigDict:
    """Import `path` and call its `get_config(arg)` (or `get_config()`)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_mmada_cfg_{abs(hash(path))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "get_config"):
        raise ValueError(f"config file {path} has no get_config()")
    cfg = mod.get_config(arg) if arg is not None else mod.get_config()
    cfg.lock()
    return cfg


def apply_overrides(cfg: ConfigDict, overrides: dict) -> ConfigDict:
    """Set dotted keys ('optim.lr': 1e-4); unknown keys raise a clear error."""
    cfg = ConfigDict(cfg.to_dict())
    cfg.lock()
    for key, value in overrides.items():
        node = cfg
        parts = key.split(".")
        for i, p in enumerate(parts[:-1]):
            if p not in node:
                raise KeyError(f"unknown config key {'.'.join(parts[:i + 1])!r} (in {key!r})")
            node = node[p]
        if parts[-1] not in node:
            raise KeyError(f"unknown config key {key!r}; known under "
                           f"{'.'.join(parts[:-1]) or 'root'}: {sorted(node.keys())}")
        node[parts[-1]] = value
    return cfg


def parse_value(v: str):
    """'3e-3' -> 0.003, '12' -> 12, 'true' -> True, '[1, 2]' -> [1, 2], else the string."""
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v


def parse_overrides(text: str, where: str) -> dict:
    """'optim.lr=3e-3;train.seed=4' -> {'optim.lr': 0.003, 'train.seed': 4}; `where` names the
    setting in the error for a malformed item."""
    pairs = [kv.split("=", 1) for kv in str(text or "").split(";") if kv.strip()]
    bad = [kv[0] for kv in pairs if len(kv) != 2 or not kv[0].strip()]
    if bad:
        raise ValueError(f"{where}: expected 'key=value;key=value', got {text!r} "
                         f"(bad item {bad[0]!r})")
    return {k.strip(): parse_value(v.strip()) for k, v in pairs}


# ---------------------------------------------------------------------------- validation
_KNOWN_TOP = set(base_config().keys())


def mesh_shape(mesh_cfg, num_devices: int) -> dict[str, int]:
    """Resolve -1 in {data, fsdp, tensor} to the remaining devices; error if the product differs."""
    sizes = {k: int(mesh_cfg[k]) for k in ("data", "fsdp", "tensor")}
    unknown = [k for k in mesh_cfg.keys() if k not in sizes]
    if unknown:
        raise ValueError(f"config.mesh: unknown axes {unknown}; axes are data, fsdp, tensor")
    free = [k for k, v in sizes.items() if v == -1]
    if len(free) > 1:
        raise ValueError(f"config.mesh: only one axis may be -1, got {free}")
    for k, v in sizes.items():
        if v == 0 or v < -1:
            raise ValueError(f"config.mesh.{k}={v}: sizes must be positive or -1")
    fixed = math.prod(v for v in sizes.values() if v != -1)
    if free:
        if num_devices % fixed:
            raise ValueError(f"config.mesh: fixed axes multiply to {fixed}, which does not divide "
                             f"the {num_devices} devices")
        sizes[free[0]] = num_devices // fixed
    if math.prod(sizes.values()) != num_devices:
        raise ValueError(f"config.mesh: data*fsdp*tensor = {sizes} multiplies to "
                         f"{math.prod(sizes.values())}, but there are {num_devices} devices")
    return sizes


def validate(cfg: ConfigDict, num_devices: int | None = None) -> None:
    """Raise ValueError naming the bad field; return None when the config is usable."""
    unknown = set(cfg.keys()) - _KNOWN_TOP
    if unknown:
        raise ValueError(f"config: unknown top-level keys {sorted(unknown)}; "
                         f"known: {sorted(_KNOWN_TOP)}")
    m = cfg.model
    if m.d_model <= 0 or m.n_layers <= 0 or m.n_heads <= 0:
        raise ValueError("config.model: d_model, n_layers and n_heads must be positive")
    head_dim = m.head_dim or (m.d_model // m.n_heads)
    if not m.head_dim and m.d_model % m.n_heads:
        raise ValueError(f"config.model: n_heads={m.n_heads} does not divide "
                         f"d_model={m.d_model}")
    if head_dim % 2:
        raise ValueError(f"config.model: head_dim={head_dim} must be even for RoPE")
    if m.n_heads % m.n_kv_heads:
        raise ValueError(f"config.model: n_kv_heads={m.n_kv_heads} must divide "
                         f"n_heads={m.n_heads}")
    for f in ("param_dtype", "dtype", "logits_dtype"):
        if m[f] not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"config.model.{f}={m[f]!r}: use float32, bfloat16 or float16")
    if cfg.seq_len > m.max_seq_len:
        raise ValueError(f"config.seq_len={cfg.seq_len} exceeds config.model.max_seq_len="
                         f"{m.max_seq_len}")
    if not cfg.tasks:
        raise ValueError("config.tasks: at least one task is needed")
    for name, t in cfg.tasks.items():
        if t.batch_size < 0:
            raise ValueError(f"config.tasks.{name}.batch_size must be >= 0")
    if cfg.train.grad_accum < 1:
        raise ValueError("config.train.grad_accum must be >= 1")
    if num_devices is not None:
        sizes = mesh_shape(cfg.mesh, num_devices)
        dp = sizes["data"] * sizes["fsdp"]
        for name, t in cfg.tasks.items():
            per_step = t.batch_size
            if per_step % cfg.train.grad_accum:
                raise ValueError(f"config.tasks.{name}.batch_size={per_step} is not divisible by "
                                 f"config.train.grad_accum={cfg.train.grad_accum}")
            micro = per_step // cfg.train.grad_accum
            if micro % dp:
                raise ValueError(
                    f"config.tasks.{name}.batch_size={per_step} (micro-batch {micro}) is not "
                    f"divisible by the data-parallel size data*fsdp={dp}")
        if m.n_heads % sizes["tensor"]:
            raise ValueError(f"config.model.n_heads={m.n_heads} is not divisible by "
                             f"config.mesh.tensor={sizes['tensor']}")


def resolved_head_dim(m) -> int:
    return m.head_dim or m.d_model // m.n_heads
