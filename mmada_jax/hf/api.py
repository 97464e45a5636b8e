"""Load, import and export released MMaDA checkpoints.

    from mmada_jax.hf import load_pretrained
    model, params, layout = load_pretrained("/ckpt/MMaDA-8B-Base")   # sharded over all devices
    logits = model.apply({"params": params}, tokens)                 # tokens int32 [B, L]

    import_hf("/ckpt/MMaDA-8B-Base", "runs/mmada8b_init")    # -> Orbax train state, step 0
    python -m mmada_jax.train --config experiments/stage2_1_8b.py --workdir runs/s21 \
        --config.train.init_from=runs/mmada8b_init
    export_hf("runs/s21", "/out/MMaDA-8B-s21")               # -> release layout safetensors
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from mmada_jax import config as config_lib
from mmada_jax.hf import keys as keys_lib
from mmada_jax.hf.backbone import export_params, import_params
from mmada_jax.hf.safetensors_io import ShardedReader
from mmada_jax.model import build_model
from mmada_jax.sharding import LOGICAL_RULES, make_mesh, use_mesh
from mmada_jax.token_layout import TokenLayout

RELEASE_VOCAB = 134656


def read_hf_config(hf_dir: str) -> dict:
    path = os.path.join(hf_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{hf_dir}: no config.json (a released MMaDA checkpoint "
                                "directory has config.json, model.safetensors.index.json and "
                                "the model-*.safetensors shards)")
    with open(path) as f:
        return json.load(f)


def config_from_hf(hf: dict, source: str = "config.json", base=None):
    """A project config whose model and tokens match a release config.json.

    `base` (an experiment config) supplies everything else (mesh, optimizer, ...); its model
    dimensions must agree with the checkpoint's."""
    dims = keys_lib.model_overrides_from_hf(hf, source)
    if base is not None:
        m = base.model
        layout = TokenLayout.from_config(base.tokens)
        vocab = m.vocab_size or layout.model_vocab_size
        mine = dict(d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads,
                    n_kv_heads=m.n_kv_heads, mlp_dim=m.mlp_dim, vocab_size=vocab)
        bad = [f"{k}: config {v}, checkpoint {dims[k]}" for k, v in mine.items() if dims[k] != v]
        if bad:
            raise ValueError(f"{source} does not match the experiment config's model: "
                             + "; ".join(bad))
        return base
    c = config_lib.base_config()
    preset = keys_lib.preset_for(dims) or "tiny"
    c.model = config_lib.model_config(preset, **dims)
    if dims["vocab_size"] == RELEASE_VOCAB:
        c.tokens = ml_collections.ConfigDict(dict(preset="mmada_8b"))
    elif "mmada_jax_tokens" in hf:
        c.tokens = ml_collections.ConfigDict(hf["mmada_jax_tokens"])
    else:
        raise ValueError(f"{source}: vocab_size {dims['vocab_size']} is not the release's "
                         f"{RELEASE_VOCAB} and no 'mmada_jax_tokens' entry says how the token "
                         "layout looks; pass an experiment config (--config) instead")
    c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1))
    return c


def abstract_params(model, mesh, rules=LOGICAL_RULES):
    """ShapeDtypeStructs (with NamedShardings from the logical axis names) of the parameters."""
    boxed = jax.eval_shape(lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32))["params"],
                           jax.random.key(0))
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), mesh, rules)
    return jax.tree_util.tree_map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), nn.unbox(boxed),
        shardings)


def load_pretrained(hf_dir: str, *, config=None, devices=None, param_dtype: str = "bfloat16",
                    dtype: str = "bfloat16", strict: bool = True):
    """Released checkpoint directory -> (model, params, layout).

    Parameters are streamed tensor by tensor onto a mesh over `devices` (default: all; FSDP over
    every device unless `config.mesh` says otherwise), in `param_dtype` (bfloat16: the release's
    own values). `model.apply({'params': params}, tokens)` gives logits [B, L, V]."""
    hf = read_hf_config(hf_dir)
    cfg = config_from_hf(hf, os.path.join(hf_dir, "config.json"), config)
    cfg = config_lib.apply_overrides(cfg, {"model.param_dtype": param_dtype,
                                           "model.dtype": dtype})
    devices = jax.devices() if devices is None else devices
    mesh = make_mesh(cfg.mesh, devices)
    layout = TokenLayout.from_config(cfg.tokens)
    model = build_model(cfg.model, layout)
    reader = ShardedReader(hf_dir)
    abstract = abstract_params(model, mesh)
    with use_mesh(mesh):
        params = import_params(reader, model.cfg, abstract, strict=strict)
    return model, params, layout


def _state_pieces(cfg, devices):
    """Mesh, layout, model, optimizer and the train state's abstract tree / shardings."""
    from mmada_jax.training.optimizer import make_optimizer
    from mmada_jax.training.step import state_shardings
    mesh = make_mesh(cfg.mesh, devices)
    layout = TokenLayout.from_config(cfg.tokens)
    model = build_model(cfg.model, layout)
    tx, _ = make_optimizer(cfg.optim, int(cfg.train.steps))
    abstract, shardings = state_shardings(model, tx, cfg, mesh)
    return mesh, layout, model, tx, abstract, shardings


def import_hf(hf_dir: str, out_dir: str, *, config=None, devices=None, strict: bool = True,
              params_only: bool = False, log=print) -> str:
    """Released checkpoint -> Orbax train state (step 0, fresh optimizer) in `out_dir`, usable
    as `--config.train.init_from=out_dir` or as a `--workdir` to fine-tune from.
    `params_only` writes just {'params': ...} (a third of the size; enough for init_from and
    `training.checkpoint.restore_params`, not for resuming). Returns the checkpoint directory."""
    from mmada_jax.training.checkpoint import Checkpointer
    hf = read_hf_config(hf_dir)
    cfg = config_from_hf(hf, os.path.join(hf_dir, "config.json"), config)
    devices = jax.devices() if devices is None else devices
    mesh, layout, model, tx, abstract, shardings = _state_pieces(cfg, devices)
    reader = ShardedReader(hf_dir)
    n = [0]

    def progress(name, arr):
        n[0] += 1
        log(f"  [{n[0]}] {name} {tuple(arr.shape)} {arr.dtype}")

    with use_mesh(mesh):
        params = import_params(reader, model.cfg, abstract.params, strict=strict,
                               on_param=progress)
    if params_only:
        state = {"params": params}
    else:
        state = _fresh_state(params, tx, cfg, shardings, mesh)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort(indent=2))
    ck = Checkpointer(os.path.join(out_dir, "checkpoints"), async_save=False)
    ck.save(0, state, force=True)
    ck.close()
    n_arrays = len(jax.tree_util.tree_leaves(params))
    log(f"wrote {os.path.join(out_dir, 'checkpoints', '0')} ({n_arrays} "
        f"parameter arrays{', params only' if params_only else ''}, mesh {dict(mesh.shape)})")
    return os.path.join(out_dir, "checkpoints")


def _fresh_state(params, tx, cfg, shardings, mesh):
    """A step-0 TrainState around imported params (optimizer state born sharded)."""
    from mmada_jax.training.step import TrainState
    with use_mesh(mesh):
        opt_state = jax.jit(tx.init, out_shardings=shardings.opt_state)(params)
        _, s_rng = jax.random.split(jax.random.key(int(cfg.train.seed)))
        state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                           rng=jax.random.key_data(s_rng),
                           nonfinite_in_row=jnp.zeros((), jnp.int32),
                           nonfinite_total=jnp.zeros((), jnp.int32))
        return jax.jit(lambda s: s, out_shardings=shardings)(state)


def load_workdir_config(workdir: str):
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{workdir}: no config.json (pass --config)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def export_hf(workdir: str, out_dir: str, *, config=None, step: int | None = None,
              devices=None, dtype: str = "bfloat16", max_shard_bytes="5GB", log=print,
              weights: str = "auto") -> dict:
    """Parameters of a training workdir's checkpoint (latest or `step`) -> the release layout:
    model-0000i-of-0000n.safetensors, model.safetensors.index.json, config.json. `weights`:
    'auto' (the parameters' moving average when the run kept one), 'ema' or 'params'."""
    from mmada_jax.training.checkpoint import restore_params
    cfg = config if config is not None else load_workdir_config(workdir)
    devices = jax.devices() if devices is None else devices
    mesh, layout, model, tx, abstract, shardings = _state_pieces(cfg, devices)
    # parameters only (an Orbax partial restore): the optimizer moments are never read
    params, step = restore_params(workdir, abstract.params, None if step is None else int(step),
                                  weights=weights)
    index = export_params(params, model.cfg, out_dir, layout=layout,
                          tokens=cfg.tokens.to_dict(), dtype=dtype,
                          max_shard_bytes=max_shard_bytes)
    if index:
        log(f"wrote {len(index['weight_map'])} tensors "
            f"({index["metadata"]["total_size"] / 1e6:.1f} MB) from step {step} to {out_dir}")
    return index
