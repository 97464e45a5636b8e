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


def _np_rope(x, theta, positions=None):
    # x [B, L, H, D]; positions [B, L] (default 0..L-1); half split rotate_half = cat(-x2, x1)
    b, l, h, d = x.shape
    pos = np.broadcast_to(np.arange(l), (b, l)) if positions is None else positions
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = pos.astype(np.float64)[..., None] * inv
    cos = np.cos(np.concatenate([ang, ang], -1))[:, :, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[:, :, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def _np_forward(p, tokens, cfg, key_mask=None, positions=None):
    """Plain float64 LLaDA/MMaDA forward; weights in the release's [out, in] orientation;
    `p['wpe']` (optional): an absolute position table added to the token embeddings."""
    h_, d = cfg["n_heads"], cfg["d_model"]
    hd = d // h_
    x = p["wte"][tokens]
    b, l, _ = x.shape
    if positions is None:
        positions = np.broadcast_to(np.arange(l), (b, l))
    if "wpe" in p:
        x = x + p["wpe"][positions]
    for blk in p["blocks"]:
        n = _np_rmsnorm(x, blk["attn_norm"], cfg["eps"])
        q = (n @ blk["q_proj"].T).reshape(b, l, h_, hd)
        k = (n @ blk["k_proj"].T).reshape(b, l, h_, hd)
        v = (n @ blk["v_proj"].T).reshape(b, l, h_, hd)
        q, k = _np_rope(q, cfg["theta"], positions), _np_rope(k, cfg["theta"], positions)
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
    out = dict(wte=f(params["wte"]["embedding"]), blocks=blocks,
               ln_f=f(params["ln_f"]["scale"]), head=f(params["ff_out"]["kernel"]).T)
    if "wpe" in params:
        out["wpe"] = f(params["wpe"]["embedding"])
    return out


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


@pytest.mark.parametrize("explicit_positions", [False, True])
def test_abs_pos_embed_logits_match_numpy_float64(explicit_positions):
    """model.abs_pos_embed adds wpe[positions] (the same positions RoPE rotates by) to the token
    embeddings; explicit positions (a packed or left-padded row) index both."""
    rng = np.random.default_rng()
    cfg = model_config("tiny", d_model=40, n_heads=2, n_kv_heads=2, mlp_dim=72, n_layers=2,
                       vocab_size=53, dtype="float32", scan_layers=False, rope_theta=10000.0,
                       abs_pos_embed=True, max_seq_len=23)
    model = build_model(cfg)
    b, l = 2, 11
    tokens = jnp.asarray(rng.integers(0, 53, (b, l)), jnp.int32)
    from flax import linen as nn
    params = nn.unbox(model.init(jax.random.key(0), tokens)["params"])
    assert params["wpe"]["embedding"].shape == (23, 40)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(0, 0.3, a.shape), jnp.float32), params)
    positions = None
    if explicit_positions:
        positions = np.stack([np.arange(l) + 9, np.r_[np.arange(6), np.arange(5)]])
    out = model.apply({"params": params}, tokens,
                      positions=None if positions is None else jnp.asarray(positions))
    ref = _np_forward(_to_release(params, False), np.asarray(tokens),
                      dict(n_heads=2, d_model=40, eps=1e-5, theta=10000.0), positions=positions)
    err = np.linalg.norm(np.asarray(out, np.float64) - ref) / np.linalg.norm(ref)
    assert err < 1e-5, err
    # the table matters: without it the logits differ
    no_wpe = _np_forward({k: v for k, v in _to_release(params, False).items() if k != "wpe"},
                         np.asarray(tokens), dict(n_heads=2, d_model=40, eps=1e-5,
                                                  theta=10000.0), positions=positions)
    assert np.linalg.norm(no_wpe - ref) / np.linalg.norm(ref) > 1e-2


def test_abs_pos_embed_cannot_map_to_the_release_keys():
    from mmada_jax.hf import keys
    cfg = model_config("tiny", vocab_size=53, abs_pos_embed=True)
    with pytest.raises(ValueError, match="abs_pos_embed"):
        keys.entries(cfg)


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


def test_swiglu_split_gradient_matches_float64_numpy():
    """The split SwiGLU backward (custom VJP) against the analytic float64 derivative, and the
    same as XLA's own gradient, at an awkward shape."""
    from mmada_jax.model.layers import swiglu, swiglu_split
    rng = np.random.default_rng()
    g = rng.normal(0, 2, (3, 7, 13)).astype(np.float32)
    u = rng.normal(0, 1, (3, 7, 13)).astype(np.float32)
    dy = rng.normal(0, 1, (3, 7, 13)).astype(np.float32)
    out, vjp = jax.vjp(swiglu_split, jnp.asarray(g), jnp.asarray(u))
    dg, du = vjp(jnp.asarray(dy))
    g64, u64, dy64 = (a.astype(np.float64) for a in (g, u, dy))
    s = 1 / (1 + np.exp(-g64))
    np.testing.assert_allclose(np.asarray(out), g64 * s * u64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dg), dy64 * u64 * s * (1 + g64 * (1 - s)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(du), dy64 * g64 * s, rtol=1e-5, atol=1e-6)
    _, vjp_xla = jax.vjp(swiglu, jnp.asarray(g), jnp.asarray(u))
    for a, b_ in zip(vjp_xla(jnp.asarray(dy)), (dg, du)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b_), rtol=1e-5, atol=1e-6)


def test_model_gradients_equal_for_every_swiglu_grad_mode():
    from flax import linen as nn
    rng = np.random.default_rng()
    tokens = jnp.asarray(rng.integers(0, 61, (2, 9)), jnp.int32)
    grads = {}
    for mode in ("xla", "split", "auto"):
        model = build_model(model_config("tiny", vocab_size=61, dtype="float32", n_layers=2,
                                         swiglu_grad=mode))
        params = nn.unbox(model.init(jax.random.key(3), tokens)["params"])
        grads[mode] = jax.grad(lambda p: (model.apply({"params": p}, tokens) ** 2).mean())(params)
    for mode in ("split", "auto"):
        for a, b_ in zip(jax.tree_util.tree_leaves(grads["xla"]),
                         jax.tree_util.tree_leaves(grads[mode])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b_), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="swiglu_grad"):
        build_model(model_config("tiny", vocab_size=61, swiglu_grad="nope")).init(
            jax.random.key(0), tokens)
