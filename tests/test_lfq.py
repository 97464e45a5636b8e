"""LFQ against a float64 NumPy reference written from the release's definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.tokenizers import lfq


def np_codes(z):
    bits = z.shape[-1]
    out = np.zeros(z.shape[:-1], np.int64)
    for c in range(bits):  # channel 0 most significant
        out += (z[..., c] > 0).astype(np.int64) << (bits - 1 - c)
    return out


def np_vectors(codes, bits):
    out = np.empty(codes.shape + (bits,))
    for idx in np.ndindex(codes.shape):
        s = format(int(codes[idx]), f"0{bits}b")  # MSB first = channel 0
        out[idx] = [1.0 if ch == "1" else -1.0 for ch in s]
    return out


def np_entropies(z):
    z = z.reshape(-1, z.shape[-1]).astype(np.float64)
    lp = -(z - 1) ** 2  # logit of +1
    lm = -(z + 1) ** 2  # logit of -1
    m = np.maximum(lp, lm)
    pp = np.exp(lp - m) / (np.exp(lp - m) + np.exp(lm - m))
    pm = 1 - pp
    h = -(pp * np.log(pp) + pm * np.log(pm))
    mp = pp.mean(0)
    hc = -(mp * np.log(mp) + (1 - mp) * np.log(1 - mp))
    return h.mean(), hc.mean()


@pytest.mark.parametrize("shape", [(3, 5, 7, 13), (2, 1, 9, 6), (11, 4)])
def test_codes_and_vectors(shape):
    rng = np.random.default_rng(sum(shape))
    z = rng.normal(size=shape).astype(np.float32)
    z.reshape(-1)[::7] = 0.0  # zeros quantize to -1 (bit 0)
    bits = shape[-1]
    codes = np.asarray(lfq.codes_from_latents(jnp.asarray(z)))
    np.testing.assert_array_equal(codes, np_codes(z))
    assert codes.dtype == np.int32 and codes.min() >= 0 and codes.max() < 2 ** bits
    zq = np.asarray(lfq.quantize(jnp.asarray(z)))
    np.testing.assert_array_equal(zq, np.where(z > 0, 1.0, -1.0))
    np.testing.assert_array_equal(np.asarray(lfq.codes_to_vectors(jnp.asarray(codes), bits)),
                                  np_vectors(codes, bits))
    # vectors -> codes -> vectors is the identity on {-1, +1}^bits
    np.testing.assert_array_equal(np.asarray(lfq.codes_from_latents(jnp.asarray(zq))), codes)


def test_codebook_and_power_vals():
    bits = 7
    cb = np.asarray(lfq.codebook(bits))
    assert cb.shape == (128, 7)
    np.testing.assert_array_equal(cb, np_vectors(np.arange(128), bits))
    np.testing.assert_array_equal(np.asarray(lfq.power_vals(bits)),
                                  [64, 32, 16, 8, 4, 2, 1])
    np.testing.assert_array_equal(cb[5], [-1, -1, -1, -1, 1, -1, 1])


@pytest.mark.parametrize("beta,ew,cw", [(0.25, 0.1, 0.1), (0.7, 0.3, 2.0)])
def test_losses(beta, ew, cw):
    rng = np.random.default_rng(7)
    z = (rng.normal(size=(3, 5, 6, 11)) * rng.uniform(0.1, 2.0, size=11)).astype(np.float32)
    out = jax.jit(lambda z: lfq.lfq_losses(z, beta, ew, cw))(jnp.asarray(z))
    h, hc = np_entropies(z)
    sign = np.where(z > 0, 1.0, -1.0)
    mse = np.mean((sign - z.astype(np.float64)) ** 2)
    np.testing.assert_allclose(out["per_sample_entropy"], h, rtol=1e-5)
    np.testing.assert_allclose(out["codebook_entropy"], hc, rtol=1e-5)
    np.testing.assert_allclose(out["entropy_loss"], ew * (h - hc), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out["commit_loss"], cw * (1 + beta) * mse, rtol=1e-5)
    # Gradient of the released commitment form: cw * (1 - beta) * d mse / dz.
    g = jax.grad(lambda z: lfq.lfq_losses(z, beta, ew, cw)["commit_loss"])(jnp.asarray(z))
    ref = cw * (1 - beta) * 2 * (z - sign) / z.size
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-4, atol=1e-9)
    # The straight-through estimator passes gradients unchanged.
    g = jax.grad(lambda z: jnp.sum(lfq.quantize(z) * 3.0))(jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(g), 3.0)


def test_entropy_extremes():
    # All positions confidently the same code: per-sample ~0, codebook entropy ~0 -> loss ~0.
    z = jnp.full((4, 8, 5), 6.0)
    h, hc = lfq.entropy_terms(z)
    assert float(h) < 1e-6 and float(hc) < 1e-6
    # Half +6 / half -6 per channel: confident samples, maximal codebook entropy log 2.
    z = jnp.concatenate([jnp.full((2, 5), 6.0), jnp.full((2, 5), -6.0)])
    h, hc = lfq.entropy_terms(z)
    assert float(h) < 1e-6 and abs(float(hc) - np.log(2)) < 1e-6
