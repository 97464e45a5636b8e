"""TPU flash attention (interpret mode on CPU): forward and gradients against jax.grad of the
jnp reference, at lengths that are not block multiples, with every mask kind."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from mmada_jax.kernels import mask as mask_lib
from mmada_jax.kernels import testing as kt
from mmada_jax.kernels import tpu_flash


def check_against_reference(fn, q, k, v, m, tol):
    """Output and (dq, dk, dv) for a random cotangent, relative to the float32 reference."""
    rng = np.random.default_rng()
    ct = jnp.asarray(rng.standard_normal(q.shape, np.float32), q.dtype)

    @jax.jit
    def both(q, k, v, ct):
        out, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, m), q, k, v)
        up = lambda x: x.astype(jnp.float32)
        ref, ref_vjp = jax.vjp(lambda q, k, v: mask_lib.reference_attention(q, k, v, m),
                               up(q), up(k), up(v))
        return (out, *vjp(ct)), (ref, *ref_vjp(up(ct)))

    got, want = both(q, k, v, ct)
    for name, g, w in zip(("out", "dq", "dk", "dv"), got, want):
        assert g.dtype == q.dtype, name
        assert np.all(np.isfinite(np.asarray(g, np.float32))), f"{name} has NaN/inf"
        err = kt.rel_err(g, w)
        assert err < tol, f"{name}: relative error {err:.2e} >= {tol}"
    return got


CASES = [  # (b, lq, lk, h, d, kind, dtype, block_q, block_k)
    (1, 200, 200, 1, 128, "none", jnp.float32, 128, 128),
    (3, 130, 260, 4, 64, "key_pad", jnp.float32, 128, 128),
    (3, 200, 200, 2, 128, "segments", jnp.float32, 128, 128),
    (3, 100, 140, 1, 128, "empty_rows", jnp.float32, 128, 128),
    (1, 190, 190, 2, 128, "block_causal", jnp.float32, 128, 128),
    (1, 250, 250, 4, 128, "left_pad", jnp.bfloat16, 128, 256),
]


@pytest.mark.parametrize("b,lq,lk,h,d,kind,dtype,bq,bk", CASES)
def test_tpu_flash_matches_reference(b, lq, lk, h, d, kind, dtype, bq, bk):
    rng = np.random.default_rng()
    q, k, v = kt.random_qkv(rng, b, lq, lk, h, d, dtype)
    m = kt.random_mask(rng, kind, b, lq, lk)
    tol = 1e-5 if dtype == jnp.float32 else 1e-2
    fn = lambda q, k, v, m: tpu_flash.flash_attention_tpu(q, k, v, m, block_q=bq, block_k=bk)
    out = check_against_reference(fn, q, k, v, m, tol)[0]
    if kind == "empty_rows":
        assert np.all(np.asarray(out)[0] == 0)


def test_tpu_flash_forward_lse():
    rng = np.random.default_rng()
    q, k, v = kt.random_qkv(rng, 1, 40, 150, 1, 128)
    m = kt.random_mask(rng, "key_pad", 1, 40, 150)
    out, lse = tpu_flash.flash_forward_tpu(q, k, v, m, block_q=40)
    s = np.einsum("bqhd,bkhd->bqhk", np.asarray(q, np.float64), np.asarray(k, np.float64)) / np.sqrt(128)
    s = np.where(np.asarray(m.key_mask)[:, None, None, :], s, -np.inf)
    want = np.log(np.exp(s).sum(-1))
    assert kt.rel_err(lse, want) < 1e-5
    assert kt.rel_err(out, mask_lib.reference_attention(q, k, v, m)) < 1e-5


def test_tpu_flash_rejects_bad_blocks_and_shapes():
    q = jnp.zeros((1, 16, 2, 128))
    with pytest.raises(ValueError, match="block_k"):
        tpu_flash.flash_attention_tpu(q, q, q, block_k=100)
    with pytest.raises(ValueError, match="differ"):
        tpu_flash.flash_attention_tpu(q, jnp.zeros((1, 16, 3, 128)), jnp.zeros((1, 16, 3, 128)))
