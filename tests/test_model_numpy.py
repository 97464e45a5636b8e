"""The backbone's logits against an independent float64 NumPy implementation of spec section 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.config import model_config
from mmada_jax.model import build_model


def _np_rmsnorm(x, w, eps):
    var = np.mean(x * x, axis=-1, keepdims=True)
    return w * (x / np.sqrt(var + eps))


def _np_rope(x, theta):
    # x [B, L, H, D]; positions 0..L-1; half split rotate_half = cat(-x2, x1)
    b, l, h, d = x.shape
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(l, dtype=np.float64)[:, None] * inv[None, :]
    cos = np.cos(np.concatenate([ang, ang], -1))[None, :, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[None, :, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def _np_forward(p, tokens, cfg, key_mask=None):
    """Plain float64 LLaDA/MMaDA forward; weights in the release's [out, in] orientation."""
    h_, d = cfg["n_heads"], cfg["d_model"]
    hd = d // h_
    x = p["wte"][tokens]
    b, l, _ = x.shape
    for blk in p["blocks"]:
        n = _np_rmsnorm(x, blk["attn_norm"], cfg["eps"])
        q = (n @ blk["q_proj"].T).reshape(b, l, h_, hd)
        k = (n @ blk["k_proj"].T).reshape(b, l, h_, hd)
        v = (n @ blk["v_proj"].T).reshape(b, l, h_, hd)
        q, k = _np_rope(q, cfg["theta"]), _np_rope(k, cfg["theta"])
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd)
        if key_mask is not None:
            s = s + np.where(key_mask[:, None, None, :], 0.0, -np.inf)
        s = s - s.max(-1, keepdims=True)
        a = np.exp(s)
        a = a / a.sum(-1, keepdims=True)
        o = np.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, l, d)
        hres = x + o @ blk["attn_out"].T
        m = _np_rmsnorm(hres, blk["ff_norm"], cfg["eps"])
        g = m @ blk["ff_proj"].T
        u = m @ blk["up_proj"].T
        x = hres + ((g / (1 + np.exp(-g))) * u) @ blk["ff_out"].T
    return _np_rmsnorm(x, p["ln_f"], cfg["eps"]) @ p["head"].T


def _to_release(params, scan):
    """Flax params -> release-style float64 dict ([out, in] weights)."""
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    blocks = []
    n_layers = params["blocks"]["q_proj"]["kernel"].shape[0] if scan else sum(
        k.startswith("blocks_") for k in params)
    for i in range(n_layers):
        src = jax.tree_util.tree_map(lambda a: a[i], params["blocks"]) if scan else params[f"blocks_{i}"]
        blk = {k: f(src[k]["kernel"]).T for k in
               ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")}
        blk["attn_norm"] = f(src["attn_norm"]["scale"])
        blk["ff_norm"] = f(src["ff_norm"]["scale"])
        blocks.append(blk)
    return dict(wte=f(params["wte"]["embedding"]), blocks=blocks,
                ln_f=f(params["ln_f"]["scale"]), head=f(params["ff_out"]["kernel"]).T)


@pytest.mark.parametrize("scan", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_logits_match_numpy_float64(scan, masked):
    rng = np.random.default_rng()
    cfg = model_config("tiny", d_model=48, n_heads=3, n_kv_heads=3, mlp_dim=80, n_layers=2,
                       vocab_size=97, dtype="float32", scan_layers=scan, rope_theta=10000.0)
    model = build_model(cfg)
    b, l = 3, 13
    tokens = jnp.asarray(rng.integers(0, 97, (b, l)), jnp.int32)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(0, 0.3, a.shape), jnp.float32),
        model.init(jax.random.key(0), tokens)["params"])
    params = jax.tree_util.tree_map(lambda x: x, params)
    from flax import linen as nn
    params = nn.unbox(params)
    key_mask = None
    if masked:  # left padding, right padding and a full row
        km = np.ones((b, l), bool)
        km[0, :4] = False
        km[1, -5:] = False
        key_mask = jnp.asarray(km)
    out = model.apply({"params": params}, tokens, key_mask=key_mask)
    ref = _np_forward(_to_release(params, scan), np.asarray(tokens),
                      dict(n_heads=3, d_model=48, eps=1e-5, theta=10000.0),
                      None if key_mask is None else np.asarray(key_mask))
    err = np.linalg.norm(np.asarray(out, np.float64) - ref) / np.linalg.norm(ref)
    assert err < 1e-5, err


def test_fully_masked_row_is_finite():
    cfg = model_config("tiny", vocab_size=50, dtype="float32")
    model = build_model(cfg)
    tokens = jnp.ones((2, 8), jnp.int32)
    params = model.init(jax.random.key(1), tokens)["params"]
    km = jnp.array([[False] * 8, [True] * 8])
    out = model.apply({"params": params}, tokens, key_mask=km)
    assert np.all(np.isfinite(np.asarray(out)))


def test_bf16_compute_close_to_float32():
    cfg32 = model_config("tiny", vocab_size=64, dtype="float32")
    cfg16 = model_config("tiny", vocab_size=64, dtype="bfloat16")
    tokens = jnp.asarray(np.random.default_rng().integers(0, 64, (2, 11)), jnp.int32)
    params = build_model(cfg32).init(jax.random.key(2), tokens)["params"]
    a = np.asarray(build_model(cfg32).apply({"params": params}, tokens))
    b = np.asarray(build_model(cfg16).apply({"params": params}, tokens))
    assert b.dtype == np.float32  # logits come out in float32
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 3e-2


def test_unstack_and_stack_layers_keep_logits():
    from mmada_jax.model import stack_layers, unstack_layers
    cfg = model_config("tiny", vocab_size=61, dtype="float32", n_layers=3)
    model = build_model(cfg)
    tokens = jnp.asarray(np.random.default_rng().integers(0, 61, (2, 9)), jnp.int32)
    from flax import linen as nn
    params = nn.unbox(model.init(jax.random.key(3), tokens)["params"])
    ref = np.asarray(model.apply({"params": params}, tokens))
    m2, p2 = unstack_layers(model, params)
    assert not m2.cfg.scan_layers and "blocks_2" in p2 and "blocks" not in p2
    np.testing.assert_allclose(np.asarray(m2.apply({"params": p2}, tokens)), ref, rtol=1e-5, atol=1e-6)
    m3, p3 = stack_layers(m2, p2)
    for a, b in zip(jax.tree_util.tree_leaves(p3), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
