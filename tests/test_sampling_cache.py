"""The cached forward (mmada_jax.model.cache) and the cached samplers at refresh points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.model import cache as cache_lib
from mmada_jax.sampling import TextSamplerConfig, generate_text, make_logits_fn
from mmada_jax.sampling.logits import mask_positions
from mmada_jax.sampling.prompts import left_pad
from test_sampling_common import tiny_model


@pytest.mark.parametrize("scan,abs_pos", [(True, False), (False, False), (False, True)])
def test_fresh_cache_equals_full_forward(scan, abs_pos):
    model, params, layout = tiny_model(scan_layers=scan, abs_pos_embed=abs_pos)
    tokens, km = left_pad([[5, 6, 7, layout.mask, layout.mask, 9, 10, layout.mask],
                           [11, 12, 13, 14, 15, layout.mask, layout.mask, layout.mask, 2, 3]],
                          layout.eos)
    tokens, km = jnp.asarray(tokens), jnp.asarray(km)
    pos = mask_positions(km)
    full = jax.jit(lambda t: model.apply({"params": params}, t, km, positions=pos))(tokens)

    @jax.jit
    def cached(tokens, km, pos):
        y, kv = cache_lib.prefill(model, params, tokens, km, pos)
        pre = cache_lib.head_logits(model, params, y)
        win = cache_lib.window_forward(model, params, kv, tokens, km, pos, 4, 5)
        cols = cache_lib.head_logits(model, params, win, (layout.image_offset, 300))
        # a stale cache: made from other tokens at position 0
        _, kv2 = cache_lib.prefill(model, params, tokens.at[:, 0].set(20), km, pos)
        stale = cache_lib.window_forward(model, params, kv2, tokens, km, pos, 4, 5)
        return (pre, cache_lib.head_logits(model, params, win), cols, kv,
                cache_lib.head_logits(model, params, stale))

    pre, win, cols, kv, stale = cached(tokens, km, pos)
    assert kv.k.shape == (2, 2, 10, 4, 16)
    np.testing.assert_allclose(pre, full, atol=1e-5, rtol=0)
    np.testing.assert_allclose(win, full[:, 4:9], atol=1e-5, rtol=0)
    np.testing.assert_allclose(cols, full[:, 4:9, layout.image_offset:300], atol=1e-5, rtol=0)
    # A stale cache (other positions changed) no longer gives the full forward: the test can fail.
    assert np.abs(np.asarray(stale) - np.asarray(full[:, 4:9])).max() > 1e-4


@pytest.mark.parametrize("cache", ["dual", "prefix"])
def test_cached_sampler_is_exact_when_every_step_refreshes(cache):
    """One step per block: every step is a refresh point, so the cached samplers equal the exact
    one token for token (with CFG and Gumbel noise too)."""
    model, params, layout = tiny_model()
    lg = make_logits_fn(model, params)
    tokens, km = left_pad([[5, 6, 7], [11, 12, 13, 14, 15]], layout.eos)
    keys = jax.random.split(jax.random.key(1), 2)
    base = dict(gen_length=8, block_length=2, steps=4, temperature=0.7, cfg_scale=1.0)
    exact = generate_text(lg, tokens, km, keys, TextSamplerConfig(**base), layout)
    fast = generate_text(lg, tokens, km, keys, TextSamplerConfig(cache=cache, **base), layout)
    np.testing.assert_array_equal(np.asarray(fast.tokens), np.asarray(exact.tokens))


def test_decode_kernel_window_matches_xla():
    """The cached window step through the kernels' decode-shaped attention (interpret mode on
    CPU) gives the same logits as with XLA attention, and a distinct compiled program."""
    model, params, layout = tiny_model()
    tokens = jnp.asarray(np.arange(24, dtype=np.int32)[None] % 200)
    km = jnp.ones((1, 24), bool)
    a = make_logits_fn(model, params)
    b = make_logits_fn(model, params, cache_attention_impl="pallas_decode")
    assert jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b)

    @jax.jit
    def run(lg):
        _, kv = lg.prefill(tokens, km, 8, 8)
        return lg.cached_window(kv, tokens, km, 8, 8)
    np.testing.assert_allclose(run(b), run(a), atol=1e-4, rtol=0)
