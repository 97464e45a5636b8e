"""MAGVIT-v2: Show-o state-dict import against a float64 NumPy reference of the release's modules
(NCHW, OIHW weights, keys written from the release's module structure), export round trip, error
messages, and the full-size 256/512 px shapes via jax.eval_shape."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from mmada_jax.tokenizers.magvit import MAGVITv2, MagvitConfig, init_params, param_shapes
from mmada_jax.tokenizers.magvit_convert import (flax_to_showo, key_table, load_showo_magvit,
                                                 read_state_dict, save_showo_magvit, showo_to_flax)

TINY = dict(ch=8, ch_mult=(1, 2, 3), num_res_blocks=(2, 1, 2), dec_ch_mult=(1, 3, 2),
            dec_num_res_blocks=(1, 2, 1), bits=5, num_groups=4)


# ------------------------------------------------------------------ the release's state dict
def showo_state_dict(c: dict, rng) -> dict[str, np.ndarray]:
    """Random weights in Show-o's exact key layout and PyTorch shapes, following the release's
    module construction (VQGANEncoder / VQGANDecoder / LFQuantizer)."""
    sd = {}

    def conv(name, cin, cout, k):
        sd[f"{name}.weight"] = rng.normal(size=(cout, cin, k, k)) / np.sqrt(cin * k * k)
        sd[f"{name}.bias"] = rng.normal(size=(cout,)) * 0.1

    def norm(name, ch):
        sd[f"{name}.weight"] = 1 + 0.2 * rng.normal(size=(ch,))
        sd[f"{name}.bias"] = 0.2 * rng.normal(size=(ch,))

    def res(name, cin, cout):
        norm(f"{name}.norm1", cin)
        conv(f"{name}.conv1", cin, cout, 3)
        norm(f"{name}.norm2", cout)
        conv(f"{name}.conv2", cout, cout, 3)
        if cin != cout:
            conv(f"{name}.nin_shortcut", cin, cout, 1)

    def mid(name, ch):
        res(f"{name}.block_1", ch, ch)
        norm(f"{name}.attn_1.norm", ch)
        for p in ("q", "k", "v", "proj_out"):
            conv(f"{name}.attn_1.{p}", ch, ch, 1)
        res(f"{name}.block_2", ch, ch)

    ch, bits, n = c["ch"], c["bits"], len(c["ch_mult"])
    conv("encoder.conv_in", 3, ch, 3)
    block_in = ch
    for i in range(n):
        block_out = ch * c["ch_mult"][i]
        for j in range(c["num_res_blocks"][i]):
            res(f"encoder.down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != n - 1:
            conv(f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
    mid("encoder.mid", block_in)
    norm("encoder.norm_out", block_in)
    conv("encoder.conv_out", block_in, bits, 3)
    conv("encoder.quant_conv", bits, bits, 1)

    block_in = ch * c["dec_ch_mult"][-1]
    conv("decoder.post_quant_conv", bits, bits, 1)
    conv("decoder.conv_in", bits, block_in, 3)
    mid("decoder.mid", block_in)
    for i in reversed(range(n)):
        block_out = ch * c["dec_ch_mult"][i]
        for j in range(c["dec_num_res_blocks"][i]):
            res(f"decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
    norm("decoder.norm_out", block_in)
    conv("decoder.conv_out", block_in, 3, 3)

    sd = {k: v.astype(np.float32) for k, v in sd.items()}
    idx = np.arange(2 ** bits)
    sd["quantize.embedding"] = np.array(
        [[1.0 if b == "1" else -1.0 for b in format(i, f"0{bits}b")] for i in idx], np.float32)
    sd["quantize.power_vals"] = (2 ** np.arange(bits - 1, -1, -1)).astype(np.int64)
    return sd


# ------------------------------------------------------------------ float64 NumPy reference
def np_conv(x, sd, name, stride=1, pad=None):
    w, b = sd[f"{name}.weight"].astype(np.float64), sd[f"{name}.bias"].astype(np.float64)
    k = w.shape[-1]
    p = (k // 2,) * 4 if pad is None else pad  # top, bottom, left, right
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[1]), (p[2], p[3])))
    ho = (x.shape[2] - k) // stride + 1
    wo = (x.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(k):
        for j in range(k):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def np_norm(x, sd, name, groups, eps=1e-6):
    b, c, h, w = x.shape
    xr = x.reshape(b, groups, -1)
    y = (xr - xr.mean(-1, keepdims=True)) / np.sqrt(xr.var(-1, keepdims=True) + eps)
    y = y.reshape(b, c, h, w)
    return y * sd[f"{name}.weight"][None, :, None, None] + sd[f"{name}.bias"][None, :, None, None]


def swish(x):
    return x / (1 + np.exp(-x))


def np_res(x, sd, name, g):
    h = np_conv(swish(np_norm(x, sd, f"{name}.norm1", g)), sd, f"{name}.conv1")
    h = np_conv(swish(np_norm(h, sd, f"{name}.norm2", g)), sd, f"{name}.conv2")
    if f"{name}.nin_shortcut.weight" in sd:
        x = np_conv(x, sd, f"{name}.nin_shortcut")
    return x + h


def np_attn(x, sd, name, g):
    b, c, hh, ww = x.shape
    h = np_norm(x, sd, f"{name}.norm", g)
    q, k, v = (np_conv(h, sd, f"{name}.{p}").reshape(b, c, hh * ww) for p in "qkv")
    w = np.einsum("bci,bcj->bij", q, k) / np.sqrt(c)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = np.einsum("bij,bcj->bci", w, v).reshape(b, c, hh, ww)
    return x + np_conv(out, sd, f"{name}.proj_out")


def np_mid(x, sd, name, g):
    x = np_res(x, sd, f"{name}.block_1", g)
    x = np_attn(x, sd, f"{name}.attn_1", g)
    return np_res(x, sd, f"{name}.block_2", g)


def np_encoder(x, sd, c, stages=None):
    """x NCHW -> latents NCHW; `stages` returns early after conv_in + that many levels."""
    g, n = c["num_groups"], len(c["ch_mult"])
    h = np_conv(x, sd, "encoder.conv_in")
    for i in range(n):
        if stages is not None and i == stages:
            return h
        for j in range(c["num_res_blocks"][i]):
            h = np_res(h, sd, f"encoder.down.{i}.block.{j}", g)
        if i != n - 1:
            h = np_conv(h, sd, f"encoder.down.{i}.downsample.conv", stride=2, pad=(0, 1, 0, 1))
    h = np_mid(h, sd, "encoder.mid", g)
    h = swish(np_norm(h, sd, "encoder.norm_out", g))
    return np_conv(np_conv(h, sd, "encoder.conv_out"), sd, "encoder.quant_conv")


def np_quantize(z, sd):
    """Release: z_q = +1 if z > 0 else -1; index = power_vals . (z_q > 0) over channels."""
    zq = np.where(z > 0, 1.0, -1.0)
    idx = np.einsum("c,bchw->bhw", sd["quantize.power_vals"], (zq > 0).astype(np.int64))
    return zq, idx


def np_decoder(codes, sd, c):
    g, n = c["num_groups"], len(c["dec_ch_mult"])
    z = sd["quantize.embedding"][codes].transpose(0, 3, 1, 2).astype(np.float64)
    h = np_conv(np_conv(z, sd, "decoder.post_quant_conv"), sd, "decoder.conv_in")
    h = np_mid(h, sd, "decoder.mid", g)
    for i in reversed(range(n)):
        for j in range(c["dec_num_res_blocks"][i]):
            h = np_res(h, sd, f"decoder.up.{i}.block.{j}", g)
        if i != 0:
            h = h.repeat(2, axis=2).repeat(2, axis=3)
            h = np_conv(h, sd, f"decoder.up.{i}.upsample.conv")
    h = swish(np_norm(h, sd, "decoder.norm_out", g))
    return np_conv(h, sd, "decoder.conv_out")


# ------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def released(tmp_path_factory):
    rng = np.random.default_rng(3)
    sd = showo_state_dict(TINY, rng)
    path = str(tmp_path_factory.mktemp("magvit") / "magvitv2.safetensors")
    save_file(sd, path)
    cfg = MagvitConfig(**TINY)
    return sd, path, cfg, load_showo_magvit(path, cfg)


def _apply(cfg, params, x, method):
    return MAGVITv2(cfg).apply({"params": params}, x, method=method)


def test_import_matches_numpy_encoder_quantizer_decoder(released):
    sd, _, cfg, params = released
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(2, 12, 20, 3)).astype(np.float32)  # awkward, non-square
    x_nchw = x.transpose(0, 3, 1, 2).astype(np.float64)

    # First encoder stage (conv_in + level 0 incl. downsample) through Flax submodules.
    p = params["encoder"]
    from mmada_jax.tokenizers.magvit import Level, _conv
    h = _conv(cfg, cfg.ch, 3, "conv_in").apply({"params": p["conv_in"]}, jnp.asarray(x))
    h = Level(cfg, cfg.ch, 2, "down").apply({"params": p["down_0"]}, h)
    ref = np_encoder(x_nchw, sd, TINY, stages=1)
    np.testing.assert_allclose(np.asarray(h).transpose(0, 3, 1, 2), ref, rtol=1e-4, atol=1e-4)

    # Whole encoder and the quantizer.
    z, codes = jax.jit(lambda p, x: (_apply(cfg, p, x, MAGVITv2.encode_latents),
                                     _apply(cfg, p, x, MAGVITv2.encode)))(params, x)
    z, codes = np.asarray(z), np.asarray(codes)
    z_ref = np_encoder(x_nchw, sd, TINY)
    assert z.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(z.transpose(0, 3, 1, 2), z_ref, rtol=1e-4, atol=1e-4)
    zq_ref, idx_ref = np_quantize(z_ref, sd)
    safe = (np.abs(z_ref) > 1e-3).all(axis=1)  # away from a sign flip by rounding
    assert safe.mean() > 0.9
    np.testing.assert_array_equal(codes[safe], idx_ref[safe])

    # Decoder from the reference codes.
    out = np.asarray(jax.jit(lambda p, c: _apply(cfg, p, c, lambda m, c: m.decode(c, clip=False)))(
        params, jnp.asarray(idx_ref, jnp.int32)))
    ref = np_decoder(idx_ref, sd, TINY)
    assert out.shape == (2, 12, 20, 3)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), ref, rtol=1e-4, atol=1e-4)


def test_export_roundtrip(released, tmp_path):
    sd, _, cfg, params = released
    path = save_showo_magvit(params, cfg, tmp_path / "out.safetensors")
    back = read_state_dict(path)
    assert set(back) == set(sd)
    for k in sd:
        assert back[k].shape == sd[k].shape, k
        np.testing.assert_array_equal(back[k], sd[k].astype(back[k].dtype), err_msg=k)
    assert back["quantize.power_vals"].dtype == np.int64
    again = load_showo_magvit(path, cfg)
    jax.tree.map(np.testing.assert_array_equal, again, params)


def test_import_errors(released):
    sd, _, cfg, _ = released
    bad = dict(sd)
    del bad["encoder.down.1.block.0.nin_shortcut.weight"]
    bad["encoder.down.0.attn.0.q.weight"] = np.zeros((8, 8, 1, 1), np.float32)
    bad["decoder.conv_in.weight"] = np.zeros((3, 5, 3, 3), np.float32)
    with pytest.raises(ValueError) as e:
        showo_to_flax(bad, cfg, source="bad.safetensors")
    msg = str(e.value)
    assert "bad.safetensors" in msg
    assert "missing (1): encoder.down.1.block.0.nin_shortcut.weight" in msg
    assert "unexpected (1): encoder.down.0.attn.0.q.weight" in msg
    assert "decoder.conv_in.weight: got (3, 5, 3, 3), expected (16, 5, 3, 3)" in msg
    flipped = dict(sd)
    flipped["quantize.power_vals"] = sd["quantize.power_vals"][::-1].copy()
    with pytest.raises(ValueError, match="quantize.power_vals"):
        showo_to_flax(flipped, cfg)
    with pytest.raises(ValueError, match="mis-shaped .9.: decoder.conv_in.weight"):
        showo_to_flax(sd, MagvitConfig(**{**TINY, "bits": 6}))
    prefixed = {"vq_model." + k: v for k, v in sd.items()}
    showo_to_flax(prefixed, cfg, prefix="vq_model.")


def test_torch_formats_need_torch(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"\0")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="torch"):
            read_state_dict(path)
    else:
        pytest.skip("torch is installed")
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        (tmp_path / "w.npz").write_bytes(b"\0")
        read_state_dict(tmp_path / "w.npz")


def test_tiny_roundtrip_computed():
    cfg = MagvitConfig(**TINY)
    params = init_params(cfg, 0)
    x = jax.random.uniform(jax.random.key(1), (3, 16, 8, 3), minval=-1, maxval=1)
    enc = jax.jit(lambda p, x: _apply(cfg, p, x, MAGVITv2.encode))
    dec = jax.jit(lambda p, c: _apply(cfg, p, c, MAGVITv2.decode))
    codes = enc(params, x)
    assert codes.shape == (3, 4, 2) and codes.dtype == jnp.int32
    assert int(codes.min()) >= 0 and int(codes.max()) < 2 ** cfg.bits
    y = dec(params, codes)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    # Batched == one at a time.
    np.testing.assert_array_equal(np.asarray(enc(params, x[1:2]))[0], np.asarray(codes)[1])
    out = jax.jit(MAGVITv2(cfg).apply)({"params": params}, x)
    assert out["recon"].shape == x.shape and out["z"].shape == (3, 4, 2, cfg.bits)
    with pytest.raises(ValueError, match="not divisible"):
        enc(params, x[:, :6])


@pytest.mark.parametrize("px,side", [(256, 16), (512, 32)])
def test_release_shapes(px, side):
    cfg = MagvitConfig.showo()
    shapes = param_shapes(cfg)
    assert set(key_table(cfg)) | {"quantize.embedding", "quantize.power_vals"} == set(
        showo_state_dict(dict(ch=128, ch_mult=(1, 2, 2, 4, 4), num_res_blocks=(4, 3, 4, 3, 4),
                              dec_ch_mult=(1, 1, 2, 2, 4), dec_num_res_blocks=(4, 4, 3, 4, 3),
                              bits=13, num_groups=32), _ZeroRng()))
    m = MAGVITv2(cfg)
    x = jax.ShapeDtypeStruct((2, px, px, 3), jnp.float32)
    codes = jax.eval_shape(lambda p, x: m.apply({"params": p}, x, method=MAGVITv2.encode),
                           shapes, x)
    assert codes.shape == (2, side, side) and codes.dtype == jnp.int32
    assert side * side == {256: 256, 512: 1024}[px]
    y = jax.eval_shape(lambda p, c: m.apply({"params": p}, c, method=MAGVITv2.decode),
                       shapes, codes)
    assert y.shape == (2, px, px, 3) and y.dtype == jnp.float32
    assert shapes["decoder"]["conv_in"]["kernel"].shape == (3, 3, 13, 512)
    assert shapes["encoder"]["quant_conv"]["kernel"].shape == (1, 1, 13, 13)


class _ZeroRng:
    """Shape-only stand-in for np.random.Generator (keys and shapes without the 95M numbers)."""

    def normal(self, size):
        return np.broadcast_to(np.float32(0), size)


def test_shapes_of_key_table_match_release(released):
    sd, _, cfg, _ = released
    table = key_table(cfg)
    for k, (_, shape) in table.items():
        assert sd[k].shape == shape, k
    assert os.path.exists(released[1])


def test_torch_bin_import(released, tmp_path):
    """With torch installed, a .bin / .pth state dict (wrapped or not) loads like safetensors."""
    torch = pytest.importorskip("torch")
    sd, _, cfg, params = released
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    torch.save(tensors, tmp_path / "pytorch_model.bin")
    torch.save({"state_dict": {k: t.to(torch.bfloat16) if t.is_floating_point() else t
                               for k, t in tensors.items()}}, tmp_path / "w.pth")
    got = load_showo_magvit(tmp_path / "pytorch_model.bin", cfg)
    jax.tree.map(np.testing.assert_array_equal, got, params)
    got16 = load_showo_magvit(tmp_path / "w.pth", cfg)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-2), got16,
                 params)
