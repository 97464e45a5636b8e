"""Mosaic GPU (Hopper wgmma/TMA) flash attention: forward and gradients against jax.grad of the
float32 jnp reference. On CPU the kernels run in Mosaic GPU interpret mode (the wgmma products
become jnp.dot there, the TMA pipeline, barriers, block tables and masks run as written); on a
GPU the same tests compile the real kernels, plus larger shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.kernels import gpu_mgpu
from mmada_jax.kernels import mask as mask_lib
from mmada_jax.kernels import testing as kt

from test_kernels_tpu import check_against_reference

ON_GPU = jax.default_backend() == "gpu"

CASES = [  # (b, lq, lk, h, d, kind, dtype): awkward lengths, batch 1/3, heads 1/4
    (1, 200, 200, 4, 64, "key_pad", jnp.bfloat16),
    (3, 130, 190, 1, 64, "left_pad", jnp.bfloat16),
    (3, 150, 150, 1, 64, "segments", jnp.bfloat16),
    (3, 100, 140, 1, 128, "empty_rows", jnp.bfloat16),   # row 0 fully padded
    (1, 128, 128, 1, 64, "none", jnp.float16),
]

GPU_CASES = [
    (2, 1000, 1000, 8, 128, "none", jnp.bfloat16),
    (2, 1000, 1000, 8, 128, "key_pad", jnp.bfloat16),
    (3, 777, 777, 4, 128, "segments", jnp.bfloat16),
    (3, 500, 900, 4, 64, "empty_rows", jnp.bfloat16),
    (2, 1024, 1024, 4, 128, "left_pad", jnp.float16),
]


def _check(b, lq, lk, h, d, kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = kt.random_qkv(rng, b, lq, lk, h, d, dtype)
    m = kt.random_mask(rng, kind, b, lq, lk)
    out = check_against_reference(gpu_mgpu.flash_attention_mgpu, q, k, v, m, 1e-2)[0]
    if kind == "empty_rows":
        assert np.all(np.asarray(out, np.float32)[0] == 0)


@pytest.mark.parametrize("b,lq,lk,h,d,kind,dtype", CASES)
def test_mgpu_matches_reference(b, lq, lk, h, d, kind, dtype):
    _check(b, lq, lk, h, d, kind, dtype)


@pytest.mark.skipif(not ON_GPU, reason="large shapes compile the real kernels: GPU only")
@pytest.mark.parametrize("b,lq,lk,h,d,kind,dtype", GPU_CASES)
def test_mgpu_matches_reference_gpu(b, lq, lk, h, d, kind, dtype):
    _check(b, lq, lk, h, d, kind, dtype, seed=1)


def test_mgpu_forward_lse_and_scale():
    rng = np.random.default_rng(2)
    q, k, v = kt.random_qkv(rng, 1, 128, 128, 1, 64, jnp.bfloat16)
    m = kt.random_mask(rng, "key_pad", 1, 128, 128)
    out, lse = gpu_mgpu.flash_forward_mgpu(q, k, v, m, scale=0.3)
    up = lambda x: x.astype(jnp.float32)
    ref = mask_lib.reference_attention(up(q), up(k), up(v), m, scale=0.3)
    assert kt.rel_err(np.asarray(out, np.float32), ref) < 1e-2
    s = jnp.einsum("bqhd,bkhd->bqhk", up(q), up(k)) * 0.3
    s = jnp.where(m.key_mask[:, None, None, :], s, -jnp.inf)
    want = jax.nn.logsumexp(s, axis=-1)
    np.testing.assert_allclose(np.asarray(lse), np.asarray(want), rtol=1e-2, atol=1e-2)


def test_mgpu_config_and_input_errors():
    x = jnp.zeros((1, 64, 1, 64), jnp.bfloat16)
    with pytest.raises(ValueError, match="block_kv"):
        gpu_mgpu.flash_attention_mgpu(x, x, x, config=gpu_mgpu.MgpuConfig(block_kv=96))
    with pytest.raises(ValueError, match="max_concurrent_steps"):
        gpu_mgpu.flash_attention_mgpu(x, x, x,
                                      config=gpu_mgpu.MgpuConfig(max_concurrent_steps=1))
    with pytest.raises(ValueError, match="compute_wgs_bwd"):
        gpu_mgpu.flash_attention_mgpu(x, x, x, config=gpu_mgpu.MgpuConfig(compute_wgs_bwd=3))
    with pytest.raises(ValueError, match="head dim"):
        y = jnp.zeros((1, 64, 1, 32), jnp.bfloat16)
        gpu_mgpu.flash_attention_mgpu(y, y, y)
    with pytest.raises(TypeError, match="bfloat16"):
        y = jnp.zeros((1, 64, 1, 64), jnp.float32)
        gpu_mgpu.flash_attention_mgpu(y, y, y)
    with pytest.raises(NotImplementedError, match="block_causal"):
        gpu_mgpu.flash_attention_mgpu(x, x, x, mask_lib.AttentionMask(block_causal=16))


def test_mgpu_registered():
    import mmada_jax.kernels  # noqa: F401  (registers the implementations)
    from mmada_jax.kernels import dispatch
    from mmada_jax.model import attention as attn
    assert "pallas_mgpu" in attn.available_impls()
    assert not dispatch.mgpu_supported(jnp.zeros((1, 8, 1, 64), jnp.bfloat16)) or ON_GPU
