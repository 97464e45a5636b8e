"""Each objective against a NumPy float64 reference of its formula (spec section 3)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmada_jax.objectives import get_objective, token_scores
from mmada_jax.objectives.image import image_mask
from mmada_jax.objectives.schedules import get_schedule
from mmada_jax.objectives.text import text_mask

TRAIN = ml_collections.ConfigDict(dict(text_eps=1e-3))


def _np_ce(logits, targets):
    l64 = logits.astype(np.float64)
    m = l64.max(-1, keepdims=True)
    lse = np.log(np.exp(l64 - m).sum(-1)) + m[..., 0]
    return lse - np.take_along_axis(l64, targets[..., None], -1)[..., 0]


def _rand(b, l, v, rng):
    logits = rng.normal(0, 2, (b, l, v)).astype(np.float32)
    tokens = rng.integers(0, v, (b, l)).astype(np.int32)
    return logits, tokens


def test_text_lm_loss_matches_numpy():
    rng = np.random.default_rng()
    b, l, v = 3, 17, 29
    logits, tokens = _rand(b, l, v, rng)
    masked = rng.random((b, l)) < 0.4
    p = rng.uniform(1e-3, 1, b).astype(np.float32)
    rows = dict(tokens=tokens, target_mask=np.ones((b, l), bool))
    obj = get_objective("text_lm", ml_collections.ConfigDict(), TRAIN)
    loss, m = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), rows, dict(masked=jnp.asarray(masked), p=jnp.asarray(p)))
    ce = _np_ce(logits, tokens)
    ref = (ce * masked / p[:, None].astype(np.float64)).sum() / (b * l)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
    acc = ((logits.argmax(-1) == tokens) & masked).sum() / masked.sum()
    np.testing.assert_allclose(float(m["accuracy"]), acc, rtol=1e-6)


def test_text_answer_loss_normalizes_by_answer_length():
    rng = np.random.default_rng()
    b, l, v = 4, 19, 23
    logits, tokens = _rand(b, l, v, rng)
    target = np.zeros((b, l), bool)
    for i, start in enumerate([3, 7, 11, 18]):  # prompt lengths; answers incl. eos pads
        target[i, start:] = True
    masked = (rng.random((b, l)) < 0.5) & target
    p = rng.uniform(1e-3, 1, b).astype(np.float32)
    rows = dict(tokens=tokens, target_mask=target)
    obj = get_objective("text_answer", ml_collections.ConfigDict(), TRAIN)
    loss, _ = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), rows, dict(masked=jnp.asarray(masked), p=jnp.asarray(p)))
    ce = _np_ce(logits, tokens)
    per_row = (ce * masked / p[:, None].astype(np.float64)).sum(1) / target.sum(1)
    np.testing.assert_allclose(float(loss), per_row.sum() / b, rtol=1e-5)


def test_text_corruption_never_touches_prompt():
    b, l = 64, 40
    target = np.zeros((b, l), bool)
    target[:, 15:] = True
    rows = dict(tokens=jnp.full((b, l), 5, jnp.int32), target_mask=jnp.asarray(target))
    obj = get_objective("text_answer", ml_collections.ConfigDict(), TRAIN)
    noise = obj.corrupt(jax.random.key(3), rows, mask_id=99)
    masked = np.asarray(noise["masked"])
    assert not masked[:, :15].any()
    np.testing.assert_array_equal(np.asarray(noise["inputs"]) == 99, masked)
    # p = (1 - eps) t + eps with t ~ U(0, 1): per-row masked fraction tracks p
    frac = masked[:, 15:].mean(1)
    assert np.corrcoef(frac, np.asarray(noise["p"]))[0, 1] > 0.8
    assert np.all((np.asarray(noise["p"]) >= 1e-3) & (np.asarray(noise["p"]) <= 1))


def test_text_mask_probability_formula():
    key = jax.random.key(11)
    tm = jnp.ones((5, 7), bool)
    _, p = text_mask(key, tm, 1e-3)
    k_t, _ = jax.random.split(key)
    t = np.asarray(jax.random.uniform(k_t, (5,), jnp.float32), np.float64)
    np.testing.assert_allclose(np.asarray(p), (1 - 1e-3) * t + 1e-3, rtol=1e-6)


def test_image_mask_counts_follow_cosine_schedule():
    b, l = 16, 30
    target = np.zeros((b, l), bool)
    target[:, 5:25] = True  # 20 image positions
    target[3] = False  # a row without image tokens masks nothing
    key = jax.random.key(7)
    masked, n = image_mask(key, jnp.asarray(target), get_schedule("cosine"))
    k_t, _ = jax.random.split(key)
    t = np.asarray(jax.random.uniform(k_t, (b,), jnp.float32), np.float64)
    expect = np.clip(np.round(20 * np.cos(np.pi * t / 2)), 1, 20)
    expect[3] = 0
    masked = np.asarray(masked)
    np.testing.assert_array_equal(masked.sum(1), expect)
    assert not (masked & ~target).any()


def test_image_loss_is_plain_mean_over_masked():
    rng = np.random.default_rng()
    b, l, v = 3, 21, 31
    logits, tokens = _rand(b, l, v, rng)
    masked = rng.random((b, l)) < 0.3
    masked[0, 0] = True
    obj = get_objective("image_mask", ml_collections.ConfigDict(dict(schedule="cosine")), TRAIN)
    loss, _ = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), dict(tokens=tokens), dict(masked=jnp.asarray(masked)))
    ref = _np_ce(logits, tokens)[masked].mean()
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)


def test_training_schedule_is_usable_by_the_image_sampler():
    """A schedule registered once (for training) also drives the sampler's mask-length table."""
    from mmada_jax.objectives import register_schedule
    from mmada_jax.sampling.schedules import mask_len_table

    @register_schedule("test_cubic")
    def cubic(t):
        return 1.0 - t ** 3

    steps, n = 7, 50
    r = (np.arange(steps, dtype=np.float32) + 1) / steps
    np.testing.assert_array_equal(mask_len_table("test_cubic", steps, n),
                                  np.floor(np.float32(n) * (1 - r ** 3)).astype(np.int32))
    import pytest
    with pytest.raises(ValueError, match="mask schedule 'nope' unknown"):
        mask_len_table("nope", steps, n)
