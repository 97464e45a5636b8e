"""GPU (Triton-lowering) flash attention run in interpret mode on CPU: forward and gradients
against jax.grad of the jnp reference; the table of visited blocks."""

import numpy as np
import pytest
import jax.numpy as jnp

from mmada_jax.kernels import common, gpu_flash
from mmada_jax.kernels import mask as mask_lib
from mmada_jax.kernels import testing as kt

from test_kernels_tpu import check_against_reference

SMALL = gpu_flash.GpuConfig(block_q=32, block_k=32, block_q_bwd=16, block_k_bwd=32)

CASES = [  # (b, lq, lk, h, d, kind, dtype)
    (3, 70, 90, 1, 32, "key_pad", jnp.float32),
    (1, 75, 75, 4, 16, "segments", jnp.bfloat16),
    (3, 40, 70, 1, 32, "empty_rows", jnp.float32),
]


@pytest.mark.parametrize("b,lq,lk,h,d,kind,dtype", CASES)
def test_gpu_flash_matches_reference(b, lq, lk, h, d, kind, dtype):
    rng = np.random.default_rng()
    q, k, v = kt.random_qkv(rng, b, lq, lk, h, d, dtype)
    m = kt.random_mask(rng, kind, b, lq, lk)
    tol = 1e-5 if dtype == jnp.float32 else 1e-2
    fn = lambda q, k, v, m: gpu_flash.flash_attention_gpu(q, k, v, m, config=SMALL)
    out = check_against_reference(fn, q, k, v, m, tol)[0]
    if kind == "empty_rows":
        assert np.all(np.asarray(out)[0] == 0)


def test_block_table_orders_full_then_partial():
    st = jnp.array([[[0, 2, 1, 2, 0]]], jnp.int32)
    tbl = np.asarray(common.block_table(st))[0, 0]
    assert tbl[:2].tolist() == [2, 1]           # two full blocks, one partial
    assert tbl[2:5].tolist() == [1, 3, 2]       # full ones first, then the partial one


def test_gpu_config_validation():
    with pytest.raises(ValueError, match="block_k"):
        gpu_flash.flash_attention_gpu(*(jnp.zeros((1, 8, 1, 16)),) * 3,
                                      config=gpu_flash.GpuConfig(block_k=48))
    with pytest.raises(ValueError, match="head dim"):
        gpu_flash.flash_attention_gpu(*(jnp.zeros((1, 8, 1, 24)),) * 3)
