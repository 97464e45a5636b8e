"""MaskGIT image sampler vs a plain NumPy reference on a tiny random model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.sampling import ImageSamplerConfig, generate_image, make_logits_fn
from mmada_jax.sampling.prompts import t2i_prompts
from mmada_jax.sampling.schedules import annealed_temperatures, mask_len_table
from test_sampling_common import full_logits_fn, reference_image, tiny_model

T, V = 6, 16  # max_text_len, image tokens (rows of 25)


def encode(s):
    return list(s.encode())


@pytest.fixture(scope="module")
def setup():
    model, params, layout = tiny_model()
    rows = t2i_prompts(["red", "a big blue ball"], layout, encode, T, V)
    return dict(model=model, params=params, layout=layout, rows=rows,
                lg=make_logits_fn(model, params, positions="absolute"),
                ref=full_logits_fn(model, params, "absolute"),
                keys=jax.random.split(jax.random.key(7), 2))


def _run(s, cfg, rows=None, keys=None, lg=None):
    r = rows or s["rows"]
    return np.asarray(generate_image(lg or s["lg"], r["tokens"], r["key_mask"],
                                     r["uncond_tokens"], r["uncond_key_mask"],
                                     s["keys"] if keys is None else keys, cfg, s["layout"],
                                     image_start=r["image_start"], num_image_tokens=V))


def _ref(s, cfg):
    r, lay = s["rows"], s["layout"]
    b = r["tokens"].shape[0]
    return reference_image(
        s["ref"], r["tokens"], r["key_mask"], np.stack([r["uncond_tokens"]] * b),
        np.stack([r["uncond_key_mask"]] * b), s["keys"], steps=cfg.steps,
        guidance_scale=cfg.guidance_scale, temperature=cfg.temperature,
        token_temperature=cfg.token_temperature, image_start=r["image_start"],
        num_image_tokens=V, mask_id=lay.mask, offset=lay.image_offset, codebook=lay.codebook_size)


def test_t2i_rows_follow_the_layout(setup):
    r, lay = setup["rows"], setup["layout"]
    row = r["tokens"][0]
    assert r["tokens"].shape == (2, T + V + 3) and r["image_start"] == T + 2
    assert row[:1].tolist() == [lay.ipad]      # T + 1 - len(<t2i> <bos> r e d <eos>) = 1 pad
    assert row[1:3].tolist() == [lay.t2i, lay.bos] and row[T].tolist() == lay.eos
    assert row[T + 1] == lay.soi and row[-1] == lay.eoi and (row[T + 2:-1] == lay.mask).all()
    assert r["key_mask"][0].tolist() == [False] + [True] * (T + V + 2)
    assert r["uncond_tokens"][T - 2:T + 1].tolist() == [lay.t2i, lay.bos, lay.eos]


def test_schedule_tables():
    # float32 cos(pi/2) is -4e-8 (as in torch), so the last entry floors to -1; the clamp to
    # [1, unknown - 1] makes it 1 either way.
    assert np.maximum(mask_len_table("cosine", 4, 16), 1).tolist() == [
        max(1, int(np.floor(16 * np.cos((s + 1) / 4 * np.pi / 2)))) for s in range(4)]
    np.testing.assert_allclose(annealed_temperatures(2.0, 3), [2 * 2 / 3, 2 * 2 / 3 * 1 / 3, 0])


@pytest.mark.parametrize("kw", [
    dict(guidance_scale=0.0, temperature=0.0, token_temperature=0.0),
    dict(guidance_scale=3.5, temperature=1.0, token_temperature=1.0),
])
def test_image_sampler_equals_reference(setup, kw):
    cfg = ImageSamplerConfig(steps=T, **kw)
    np.testing.assert_array_equal(_run(setup, cfg), _ref(setup, cfg))


def test_cfg_rows_are_built_correctly(setup):
    """Record every row the model sees: the unconditional row is the empty-caption prefix (cut
    at the image span) followed by the conditional row's current image tokens."""
    r, lay, ref = setup["rows"], setup["layout"], setup["ref"]
    seen = []

    def fn(tokens, key_mask):
        jax.debug.callback(lambda t, m: seen.append((np.asarray(t), np.asarray(m))), tokens,
                           key_mask, ordered=True)
        return jax.pure_callback(lambda t, m: ref(t, m), jax.ShapeDtypeStruct(
            (*tokens.shape, 384), jnp.float32), tokens, key_mask)

    cfg = ImageSamplerConfig(steps=3, guidance_scale=2.0)
    _run(setup, cfg, lg=fn)
    jax.effects_barrier()
    assert len(seen) == 3
    start = r["image_start"]
    for t, m in seen:
        assert t.shape == (4, T + V + 3)
        np.testing.assert_array_equal(t[:2], np.concatenate([r["tokens"][:, :start],
                                                             t[:2, start:]], 1))
        np.testing.assert_array_equal(t[2:, :start], np.stack([r["uncond_tokens"][:start]] * 2))
        np.testing.assert_array_equal(t[2:, start:], t[:2, start:])
        np.testing.assert_array_equal(m[2:], np.stack([r["uncond_key_mask"]] * 2))
    assert (seen[-1][0][:, start:start + V] != lay.mask).any()  # tokens got committed


def test_batch_equals_rows_alone(setup):
    cfg = ImageSamplerConfig(steps=4)
    batch = _run(setup, cfg)
    r = setup["rows"]
    one = {k: (v[1:2] if k in ("tokens", "key_mask") else v) for k, v in r.items()}
    np.testing.assert_array_equal(_run(setup, cfg, rows=one, keys=setup["keys"][1:2])[0],
                                  batch[1])


def test_prefix_cache_refreshing_every_step_is_exact(setup):
    cfg = ImageSamplerConfig(steps=4)
    fast = ImageSamplerConfig(steps=4, prefix_cache=True, refresh_every=1)
    np.testing.assert_array_equal(_run(setup, fast), _run(setup, cfg))
