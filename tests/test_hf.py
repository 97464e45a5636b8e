"""Hugging Face interop: release naming, export/import round trips, logits from a released-style
directory against an independent numpy forward, clear errors, Orbax import + export."""

import json
import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from mmada_jax.config import apply_overrides, base_config, load_config_file, model_config
from mmada_jax.hf import (CheckpointFormatError, export_params, import_hf, load_pretrained,
                          release_shapes)
from mmada_jax.hf.api import export_hf
from mmada_jax.model import build_model
from mmada_jax.sharding import make_mesh, use_mesh
from mmada_jax.token_layout import TokenLayout
from mmada_jax.training.checkpoint import restore_params
from mmada_jax.training.loop import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BF16 = ml_dtypes.bfloat16


def spec_key_list(d, n, f, v, qkv):
    """Spec section 1's key list, written out independently of mmada_jax.hf.keys."""
    p = "model.transformer."
    keys = {p + "wte.weight": (v, d), p + "ln_f.weight": (d,), p + "ff_out.weight": (v, d)}
    for i in range(n):
        b = f"{p}blocks.{i}."
        keys[b + "attn_norm.weight"] = (d,)
        keys[b + "ff_norm.weight"] = (d,)
        for nm in ("q_proj", "k_proj", "v_proj"):
            keys[b + nm + ".weight"] = (qkv, d)
        keys[b + "attn_out.weight"] = (d, qkv)
        keys[b + "ff_proj.weight"] = (f, d)
        keys[b + "up_proj.weight"] = (f, d)
        keys[b + "ff_out.weight"] = (d, f)
    return keys


def _cfg(scan=True):
    c = base_config()
    c.model.dtype = "float32"
    c.model.scan_layers = scan
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, 4, 2
    return c


def _params(cfg, bf16_exact=True, seed=0):
    layout = TokenLayout.from_config(cfg.tokens)
    model = build_model(cfg.model, layout)
    mesh = make_mesh(cfg.mesh, jax.devices())
    from mmada_jax.hf.api import abstract_params
    ab = abstract_params(model, mesh)
    with use_mesh(mesh):
        p = jax.jit(lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32))["params"],
                    out_shardings=jax.tree_util.tree_map(lambda a: a.sharding, ab))(
            jax.random.key(seed))
    from flax import linen as nn
    p = nn.unbox(p)
    # random norms too (ones would hide a norm/weight mix-up)
    p = jax.tree_util.tree_map(
        lambda x: x + 0.1 * jax.random.normal(jax.random.key(seed + 1), x.shape, x.dtype), p)
    if bf16_exact:
        p = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16).astype(x.dtype), p)
    return model, layout, p


def _read_dir(d):
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out = {}
    for fn in sorted(set(idx["weight_map"].values())):
        out.update(load_file(os.path.join(d, fn)))
    return idx, out


def test_release_names_match_spec_tiny_and_8b():
    m = model_config("tiny", vocab_size=384)
    assert release_shapes(m) == spec_key_list(64, 2, 192, 384, 64)
    m8 = model_config("8b", vocab_size=134656)
    got = release_shapes(m8)
    assert got == spec_key_list(4096, 32, 12288, 134656, 4096)
    assert len(got) == 3 + 32 * 9
    total = sum(int(np.prod(s)) for s in got.values())
    assert abs(total - 8.08e9) < 0.01e9  # spec: about 8.08e9 parameters


def test_unscanned_layers_use_the_same_names():
    from mmada_jax.hf.keys import entries
    m = model_config("tiny", vocab_size=384, scan_layers=False)
    assert release_shapes(m) == spec_key_list(64, 2, 192, 384, 64)
    paths = {"/".join(e.path): e.flax_shape for e in entries(m)}
    assert paths["blocks_1/q_proj/kernel"] == (64, 64)
    assert paths["blocks_0/ff_out/kernel"] == (192, 64)


@pytest.mark.parametrize("scan", [True])
def test_export_names_shapes_dtypes_and_bitwise_roundtrip(tmp_path, scan):
    cfg = _cfg(scan)
    model, layout, params = _params(cfg)
    out = tmp_path / "hf"
    export_params(params, model.cfg, str(out), layout=layout, tokens=cfg.tokens.to_dict(),
                  max_shard_bytes=60_000)
    idx, tensors = _read_dir(out)
    want = spec_key_list(64, 2, 192, model.cfg.vocab_size, 64)
    assert set(tensors) == set(want) == set(idx["weight_map"])
    for k, t in tensors.items():
        assert t.shape == want[k], k
        assert t.dtype == BF16, k
    shards = sorted(set(idx["weight_map"].values()))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert idx["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())
    with safe_open(os.path.join(out, shards[0]), "numpy") as f:
        assert f.metadata() == {"format": "pt"}  # transformers refuses files without it
    hf = json.load(open(out / "config.json"))
    assert hf["model_type"] == "mmada" and hf["architectures"] == ["MMadaModelLM"]
    assert (hf["d_model"], hf["n_layers"], hf["n_heads"], hf["mlp_hidden_size"],
            hf["vocab_size"], hf["embedding_size"]) == (64, 2, 4, 192, model.cfg.vocab_size,
                                                        model.cfg.vocab_size)
    assert hf["weight_tying"] is False and hf["block_type"] == "llama"
    # PyTorch layout: head [V, D] = our kernel transposed; gate is ff_proj
    blk = params["blocks"] if scan else None
    gate = np.asarray(blk["ff_proj"]["kernel"][1]) if scan else \
        np.asarray(params["blocks_1"]["ff_proj"]["kernel"])
    np.testing.assert_array_equal(tensors["model.transformer.blocks.1.ff_proj.weight"]
                                  .astype(np.float32), gate.T)
    np.testing.assert_array_equal(tensors["model.transformer.ff_out.weight"].astype(np.float32),
                                  np.asarray(params["ff_out"]["kernel"]).T)

    model2, back, _ = load_pretrained(str(out), config=cfg, param_dtype="float32")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(params),
                            jax.tree_util.tree_leaves(back)):
        assert b.dtype == a.dtype and b.shape == a.shape
        assert b.sharding == a.sharding, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a),
                                      err_msg=jax.tree_util.keystr(path))


def test_float32_export_roundtrip_is_bitwise(tmp_path):
    cfg = _cfg()
    model, layout, params = _params(cfg, bf16_exact=False)
    export_params(params, model.cfg, str(tmp_path), layout=layout, dtype="float32",
                  tokens=cfg.tokens.to_dict())
    _, back, _ = load_pretrained(str(tmp_path), param_dtype="float32")  # layout from config.json
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(back)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


# ------------------------------------------------------------------ independent reference
def _np_forward(t, tokens, n_layers, n_heads, eps=1e-5, theta=500000.0):
    """The release's math from the [out, in] tensors in float64 (spec section 1)."""
    p = "model.transformer."
    w = lambda k: t[p + k].astype(np.float64)  # noqa: E731
    x = w("wte.weight")[tokens]
    b, L, d = x.shape
    hd = d // n_heads

    def norm(h, g):
        return h / np.sqrt(np.mean(h * h, -1, keepdims=True) + eps) * g

    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.arange(L)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(z):  # [b, L, H, hd]
        z1, z2 = z[..., :hd // 2], z[..., hd // 2:]
        return z * cos[None, :, None] + np.concatenate([-z2, z1], -1) * sin[None, :, None]

    for i in range(n_layers):
        q_ = f"blocks.{i}."
        n = norm(x, w(q_ + "attn_norm.weight"))
        q = rope((n @ w(q_ + "q_proj.weight").T).reshape(b, L, n_heads, hd))
        k = rope((n @ w(q_ + "k_proj.weight").T).reshape(b, L, n_heads, hd))
        v = (n @ w(q_ + "v_proj.weight").T).reshape(b, L, n_heads, hd)
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("bhqk,bkhd->bqhd", s, v).reshape(b, L, d)
        h = x + o @ w(q_ + "attn_out.weight").T
        m = norm(h, w(q_ + "ff_norm.weight"))
        g = m @ w(q_ + "ff_proj.weight").T
        u = m @ w(q_ + "up_proj.weight").T
        x = h + (g / (1 + np.exp(-g)) * u) @ w(q_ + "ff_out.weight").T
    return norm(x, w("ln_f.weight")) @ w("ff_out.weight").T


def _release_dir(tmp_path, vocab=384, d=64, n=2, f=192, heads=4, drop=None, reshape=None):
    """A released-style directory written directly (two shards + index + config.json)."""
    rng = np.random.default_rng(0)
    shapes = spec_key_list(d, n, f, vocab, d)
    tensors = {k: (rng.standard_normal(s) * (0.3 if len(s) == 1 else 0.05)
                   + (1.0 if len(s) == 1 else 0.0)).astype(BF16) for k, s in shapes.items()}
    if drop:
        del tensors[drop]
    if reshape:
        k, s = reshape
        tensors[k] = np.zeros(s, BF16)
    keys = sorted(tensors)
    half = len(keys) // 2
    wm = {}
    for i, part in enumerate((keys[:half], keys[half:])):
        fn = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, str(tmp_path / fn), metadata={"format": "pt"})
        wm.update({k: fn for k in part})
    json.dump({"metadata": {"total_size": 0}, "weight_map": wm},
              open(tmp_path / "model.safetensors.index.json", "w"))
    cfg = dict(d_model=d, n_layers=n, n_heads=heads, n_kv_heads=heads, mlp_hidden_size=f,
               vocab_size=vocab, embedding_size=vocab, rope_theta=500000.0, rms_norm_eps=1e-5,
               max_sequence_length=512, block_type="llama", weight_tying=False,
               mmada_jax_tokens=dict(preset="custom", base_vocab_size=256, codebook_size=64,
                                     model_vocab_size=0))
    json.dump(cfg, open(tmp_path / "config.json", "w"))
    return tensors


def test_load_pretrained_logits_match_numpy_reference(tmp_path):
    tensors = _release_dir(tmp_path)
    model, params, layout = load_pretrained(str(tmp_path), param_dtype="float32",
                                            dtype="float32")
    assert layout.model_vocab_size == 384
    tokens = np.random.default_rng(1).integers(0, 384, (2, 12)).astype(np.int32)
    got = np.asarray(model.apply({"params": params}, jnp.asarray(tokens)))
    want = _np_forward(tensors, tokens, 2, 4)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_missing_tensor_is_named(tmp_path):
    _release_dir(tmp_path, drop="model.transformer.blocks.1.up_proj.weight")
    with pytest.raises(CheckpointFormatError, match=r"missing \(1\): "
                       r"model\.transformer\.blocks\.1\.up_proj\.weight"):
        load_pretrained(str(tmp_path))


def test_misshaped_tensor_is_named(tmp_path):
    _release_dir(tmp_path, reshape=("model.transformer.blocks.0.attn_out.weight", (64, 32)))
    with pytest.raises(CheckpointFormatError,
                       match=r"blocks\.0\.attn_out\.weight: \(64, 32\) in checkpoint, "
                             r"expected \(64, 64\)"):
        load_pretrained(str(tmp_path))


def test_config_mismatch_and_missing_files_are_clear(tmp_path):
    _release_dir(tmp_path)
    other = apply_overrides(_cfg(), {"model.n_layers": 3})
    with pytest.raises(ValueError, match="n_layers: config 3, checkpoint 2"):
        load_pretrained(str(tmp_path), config=other)
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    with pytest.raises(FileNotFoundError, match="model-00002-of-00002.safetensors"):
        load_pretrained(str(tmp_path))


def test_import_hf_orbax_init_from_and_export_back(tmp_path):
    src = tmp_path / "release"
    src.mkdir()
    tensors = _release_dir(src)
    cfg = apply_overrides(load_config_file(os.path.join(ROOT, "experiments", "pretrain_tiny.py")),
                          {"mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2,
                           "tasks.t2i.batch_size": 4, "tasks.lm.batch_size": 4,
                           "tasks.mmu.batch_size": 4})
    work = tmp_path / "imported"
    import_hf(str(src), str(work), config=cfg, log=lambda *a: None)
    setup = build(cfg, jax.devices())
    params, step = restore_params(str(work), setup.abstract_state)  # what init_from does
    assert step == 0
    np.testing.assert_array_equal(
        np.asarray(params["blocks"]["q_proj"]["kernel"][1]),
        tensors["model.transformer.blocks.1.q_proj.weight"].astype(np.float32).T)
    small = tmp_path / "imported_params_only"
    import_hf(str(src), str(small), config=cfg, params_only=True, log=lambda *a: None)
    params2, _ = restore_params(str(small), setup.abstract_state)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    out = tmp_path / "exported"
    export_hf(str(work), str(out), log=lambda *a: None)
    _, back = _read_dir(out)
    assert set(back) == set(tensors)
    for k in tensors:  # bf16 -> float32 state -> bf16 export: the release's bytes
        assert back[k].dtype == BF16
        np.testing.assert_array_equal(back[k].view(np.uint16), tensors[k].view(np.uint16),
                                      err_msg=k)


def test_magvit_import_export_roundtrip(tmp_path):
    from mmada_jax.hf.magvit import export_magvit, import_magvit, load_magvit
    from mmada_jax.tokenizers.magvit import MagvitConfig, param_shapes
    from mmada_jax.tokenizers.magvit_convert import flax_to_showo
    cfg = MagvitConfig(ch=8, ch_mult=(1, 2, 3), num_res_blocks=(2, 1, 2), dec_ch_mult=(1, 3, 2),
                       dec_num_res_blocks=(1, 2, 1), bits=5, num_groups=4)
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(lambda a: rng.standard_normal(a.shape).astype(np.float32),
                                    param_shapes(cfg))
    sd = flax_to_showo(params, cfg)
    rel = tmp_path / "magvitv2"
    rel.mkdir()
    save_file(sd, str(rel / "model.safetensors"), metadata={"format": "pt"})
    json.dump({"_class_name": "MAGVITv2", "note": "release config"}, open(rel / "config.json", "w"))
    import_magvit(str(rel), str(tmp_path / "orbax"), cfg=cfg, log=lambda *a: None)
    cfg2, _ = load_magvit(str(tmp_path / "orbax"))
    assert cfg2 == cfg
    export_magvit(str(tmp_path / "orbax"), str(tmp_path / "out"), log=lambda *a: None)
    back = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k], err_msg=k)
    assert json.load(open(tmp_path / "out" / "config.json"))["note"] == "release config"
