"""The mask spec, the jnp reference (against numpy float64 and the model's xla impl),
block tables and the cuDNN wrapper's mask handling (run through XLA on CPU)."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from mmada_jax.kernels import mask as mask_lib
from mmada_jax.kernels import testing as kt
from mmada_jax.kernels.dispatch import cudnn_attention
from mmada_jax.model.attention import xla_attention


def numpy_attention(q, k, v, vis, scale):
    """float64 attention; vis bool [B, 1|H, Lq, Lk] or None; empty rows -> 0."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    s = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if vis is None:
        vis = np.ones(s.shape, bool)
    vis = np.broadcast_to(np.asarray(vis), s.shape)
    s = np.where(vis, s, -np.inf)
    mx = np.max(s, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    p = np.where(vis, np.exp(s - mx), 0.0)
    den = p.sum(-1, keepdims=True)
    p = p / np.where(den == 0, 1.0, den)
    return np.einsum("bhqk,bkhd->bqhd", p, v)


def dense_numpy_mask(m: mask_lib.AttentionMask, b, lq, lk):
    """Visibility built directly from the rule in the mask module's docstring."""
    vis = np.ones((b, 1, lq, lk), bool)
    if m.key_mask is not None:
        vis &= np.asarray(m.key_mask)[:, None, None, :]
    if m.q_segment_ids is not None:
        vis &= (np.asarray(m.q_segment_ids)[:, None, :, None]
                == np.asarray(m.kv_segment_ids)[:, None, None, :])
    if m.block_causal is not None:
        qb = (np.arange(lq) + m.q_offset) // m.block_causal
        kb = np.arange(lk) // m.block_causal
        vis &= kb[None, :] <= qb[:, None]
    return vis


@pytest.mark.parametrize("kind", kt.MASK_KINDS)
def test_reference_matches_float64(kind):
    rng = np.random.default_rng()
    b, l, h, d = 3, 37, 2, 16
    q, k, v = kt.random_qkv(rng, b, l, l, h, d)
    m = kt.random_mask(rng, kind, b, l, l)
    out = mask_lib.reference_attention(q, k, v, m, scale=0.3)
    vis = None if m is None else dense_numpy_mask(m, b, l, l)
    want = numpy_attention(q, k, v, vis, 0.3)
    assert kt.rel_err(out, want) < 1e-5
    assert np.all(np.isfinite(np.asarray(out)))
    if kind == "empty_rows":  # row 0 sees nothing: exact zeros, and its gradient is finite
        assert np.all(np.asarray(out)[0] == 0)
        g = jax.grad(lambda q: jnp.sum(mask_lib.reference_attention(q, k, v, m)))(q)
        assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("kind", ["none", "key_pad", "left_pad", "segments", "empty_rows"])
def test_reference_agrees_with_model_xla_impl(kind):
    rng = np.random.default_rng()
    b, l, h, d = 2, 29, 3, 8
    q, k, v = kt.random_qkv(rng, b, l, l, h, d)
    m = kt.random_mask(rng, kind, b, l, l) or mask_lib.AttentionMask()
    ref = mask_lib.reference_attention(q, k, v, m, scale=d ** -0.5)
    xla = xla_attention(q, k, v, key_mask=m.key_mask, segment_ids=m.q_segment_ids,
                        kv_segment_ids=m.kv_segment_ids, scale=d ** -0.5)
    assert kt.rel_err(xla, ref) < 1e-5


@pytest.mark.parametrize("kind", kt.MASK_KINDS)
def test_block_states_are_sound(kind):
    rng = np.random.default_rng()
    b, lq, lk, bq, bk = 3, 96, 160, 16, 32
    m = kt.random_mask(rng, kind, b, lq, lk) if kind != "segments" else \
        kt.random_mask(rng, kind, b, lq, lq)
    if kind == "segments":
        lk = lq
    m = m or mask_lib.AttentionMask()
    qid, kid = mask_lib.canonical_ids(m, b, lq, lk)
    st = np.asarray(mask_lib.block_states(qid, kid, bq, bk, block_causal=m.block_causal))
    vis = dense_numpy_mask(m, b, lq, lk)[:, 0].reshape(b, lq // bq, bq, lk // bk, bk)
    anyv = vis.any(axis=(2, 4))
    allv = vis.all(axis=(2, 4))
    assert not np.any(anyv & (st == mask_lib.SKIP)), "a skipped block has a visible entry"
    assert np.all(allv[st == mask_lib.FULL]), "a FULL block has a hidden entry"
    if kind == "none":
        assert np.all(st == mask_lib.FULL)


def test_block_states_skip_across_segments():
    qid = jnp.repeat(jnp.arange(4, dtype=jnp.int32), 32)[None]   # 4 segments of 32
    st = np.asarray(mask_lib.block_states(qid, qid, 32, 32))[0]
    np.testing.assert_array_equal(st, np.eye(4, dtype=np.int32) * mask_lib.FULL)


def test_length_helpers():
    km = np.asarray(mask_lib.key_mask_from_lengths(jnp.array([0, 3, 5]), 5))
    np.testing.assert_array_equal(km.sum(1), [0, 3, 5])
    assert km[1].tolist() == [True, True, True, False, False]
    left = np.asarray(mask_lib.key_mask_from_lengths(jnp.array([2]), 5, left_padded=True))
    assert left[0].tolist() == [False, False, False, True, True]
    seg = np.asarray(mask_lib.segment_ids_from_lengths(jnp.array([[2, 3]]), 7))
    assert seg[0].tolist() == [0, 0, 1, 1, 1, -1, -1]


def test_mask_validation_errors():
    with pytest.raises(ValueError, match="kv_segment_ids"):
        mask_lib.AttentionMask(q_segment_ids=jnp.zeros((1, 3), jnp.int32))
    with pytest.raises(ValueError, match="block_causal"):
        mask_lib.AttentionMask(block_causal=0)
    with pytest.raises(ValueError, match="unknown mask kind"):
        kt.random_mask(np.random.default_rng(), "nope", 1, 2, 2)


@pytest.mark.parametrize("kind", ["none", "key_pad", "left_pad", "segments", "empty_rows"])
def test_cudnn_wrapper_mask_handling(kind):
    """Padding to 64, lengths-vs-boolean choice and empty rows, through implementation='xla'."""
    rng = np.random.default_rng()
    b, l, h, d = 3, 77, 2, 16
    q, k, v = kt.random_qkv(rng, b, l, l, h, d)
    m = kt.random_mask(rng, kind, b, l, l) or mask_lib.AttentionMask()
    out = jax.jit(lambda q, k, v, m: cudnn_attention(
        q, k, v, key_mask=m.key_mask, segment_ids=m.q_segment_ids,
        kv_segment_ids=m.kv_segment_ids, scale=0.25, implementation="xla"))(q, k, v, m)
    want = mask_lib.reference_attention(q, k, v, m, scale=0.25)
    assert out.shape == q.shape
    assert kt.rel_err(out, want) < 1e-5
