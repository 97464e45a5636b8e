"""LLaDA text sampler vs a plain NumPy reference on a tiny random model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.sampling import TextSamplerConfig, generate_text, make_logits_fn, transfer_counts
from mmada_jax.sampling.prompts import left_pad
from test_sampling_common import full_logits_fn, reference_text, tiny_model


@pytest.fixture(scope="module")
def setup():
    model, params, layout = tiny_model()
    lg = make_logits_fn(model, params)
    ref = full_logits_fn(model, params, "key_mask")
    tokens, mask = left_pad([[5, 6, 7], [11, 12, 13, 14, 15]], layout.eos)
    return dict(model=model, params=params, layout=layout, lg=lg, ref=ref, tokens=tokens,
                mask=mask, keys=jax.random.split(jax.random.key(3), 2))


def _ref(s, cfg, **kw):
    lay = s["layout"]
    return reference_text(s["ref"], s["tokens"], s["mask"], s["keys"], gen_length=cfg.gen_length,
                          steps=cfg.steps, block_length=cfg.block_length,
                          temperature=cfg.temperature, remasking=cfg.remasking,
                          cfg_scale=cfg.cfg_scale, threshold=cfg.threshold, mask_id=lay.mask,
                          eos_id=lay.eos, stop_at_eos=cfg.stop_at_eos, **kw)


def test_transfer_counts_match_release_formula():
    for n, steps in [(32, 8), (7, 3), (5, 8), (0, 4), (33, 32)]:
        want = [n // steps + (1 if i < n % steps else 0) for i in range(steps)]
        got = np.asarray(transfer_counts(np.array([n]), steps))[0]
        assert got.tolist() == want and sum(want) == n


@pytest.mark.parametrize("kw", [
    dict(steps=6),                                               # 2 steps per block, 2+2
    dict(steps=9, temperature=0.8),                              # counts 2,1,1; Gumbel noise
    dict(steps=6, remasking="random", temperature=0.5, cfg_scale=1.5),
])
def test_text_sampler_equals_reference(setup, kw):
    cfg = TextSamplerConfig(gen_length=12, block_length=4, **kw)
    out = generate_text(setup["lg"], setup["tokens"], setup["mask"], setup["keys"], cfg,
                        setup["layout"])
    want, calls = _ref(setup, cfg)
    np.testing.assert_array_equal(np.asarray(out.tokens), want)
    assert int(out.nfe) == calls == cfg.steps
    assert not (np.asarray(out.tokens) == setup["layout"].mask).any()


def test_threshold_parallel_decoding_equals_reference(setup):
    cfg = TextSamplerConfig(gen_length=12, block_length=4, steps=12, threshold=0.5)
    out = generate_text(setup["lg"], setup["tokens"], setup["mask"], setup["keys"], cfg,
                        setup["layout"])
    want, calls = _ref(setup, cfg)
    np.testing.assert_array_equal(np.asarray(out.tokens), want)
    assert int(out.nfe) == calls
    assert calls < 12  # the sharpened model is confident enough to commit several at once


def test_transfer_counts_per_step_in_the_compiled_loop(setup):
    """A plain logits fn records how many masks each call sees: the differences are the
    per-step transfer counts, which must follow the schedule exactly."""
    seen = []
    ref = setup["ref"]

    def fn(tokens, key_mask):
        jax.debug.callback(lambda t: seen.append((np.asarray(t) == setup["layout"].mask).sum(1)),
                           tokens, ordered=True)
        return jax.pure_callback(lambda t, m: ref(t, m), jax.ShapeDtypeStruct(
            (*tokens.shape, 384), jnp.float32), tokens, key_mask)

    cfg = TextSamplerConfig(gen_length=10, block_length=5, steps=6)  # 3 steps/block: 2,2,1
    out = generate_text(fn, setup["tokens"], setup["mask"], None, cfg, setup["layout"])
    jax.block_until_ready(out.tokens)
    masks = np.array(seen + [(np.asarray(out.tokens) == setup["layout"].mask).sum(1)])
    per_step = -(np.diff(masks, axis=0))
    assert per_step.tolist() == [[2, 2], [2, 2], [1, 1]] * 2


def test_batch_equals_rows_alone(setup):
    cfg = TextSamplerConfig(gen_length=8, block_length=4, steps=4, temperature=1.0)
    batch = np.asarray(generate_text(setup["lg"], setup["tokens"], setup["mask"], setup["keys"],
                                     cfg, setup["layout"]).tokens)
    for r, ids in enumerate([[5, 6, 7], [11, 12, 13, 14, 15]]):
        one = generate_text(setup["lg"], np.array([ids]), None, setup["keys"][r:r + 1], cfg,
                            setup["layout"]).tokens
        np.testing.assert_array_equal(batch[r, -(len(ids) + 8):], np.asarray(one)[0])


def test_stop_at_eos_fills_and_stops(setup):
    lay = setup["layout"]

    def eos_everywhere(tokens, key_mask):
        return jax.nn.one_hot(jnp.full(tokens.shape, lay.eos), 384) * 5.0

    cfg = TextSamplerConfig(gen_length=12, block_length=4, steps=6, stop_at_eos=True)
    out = generate_text(eos_everywhere, setup["tokens"], setup["mask"], None, cfg, lay)
    assert int(out.nfe) == 2  # one block of 2 steps, then stop
    assert (np.asarray(out.tokens)[:, -12:] == lay.eos).all()
    want, calls = _ref(dict(setup, ref=lambda t, m: np.asarray(eos_everywhere(t, m))), cfg)
    np.testing.assert_array_equal(np.asarray(out.tokens), want)


def test_errors_name_the_problem(setup):
    lay = setup["layout"]
    with pytest.raises(ValueError, match="prompt 1 has 5 tokens; the limit is 4"):
        left_pad([[1, 2], [1, 2, 3, 4, 5]], lay.eos, max_len=4)
    with pytest.raises(ValueError, match="prompt of 120 tokens.*max_seq_len 128.*at most 116"):
        generate_text(setup["lg"], np.ones((1, 120), np.int32), None, None,
                      TextSamplerConfig(gen_length=12, block_length=4, steps=3), lay)
    with pytest.raises(ValueError, match="not a multiple of block_length"):
        TextSamplerConfig(gen_length=10, block_length=4).validate()
    with pytest.raises(ValueError, match="model-aware"):
        generate_text(setup["ref"], setup["tokens"], None, None,
                      TextSamplerConfig(gen_length=4, block_length=4, steps=1, cache="dual"), lay)


def test_mmu_prompt_layout(setup):
    from mmada_jax.sampling.prompts import mmu_ids
    lay = setup["layout"]
    ids = mmu_ids(np.array([[1, 2], [3, 0]]), "hi", lay, lambda s: list(s.encode()))
    assert ids[:2] == [lay.mmu, lay.soi] and ids[6] == lay.eoi and ids[7] == lay.bos
    assert ids[2:6] == [lay.image_offset + c for c in (1, 2, 3, 0)]
    assert ids[-1] == ord("\n") and lay.end_header in ids[-3:]
    with pytest.raises(ValueError, match="image codes outside"):
        mmu_ids(np.array([64]), "hi", lay, lambda s: list(s.encode()))
