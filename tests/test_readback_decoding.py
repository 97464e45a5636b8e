"""Readback decoding (`sampling.readback`, `config.eval.readback`): pass 2 sees the pass-1 prompt
with its image turned into mask placeholders (as a readback training row has it) plus the answer's
first worked sentence, and the final answer is that sentence + pass 2's continuation."""

import types

import jax
import numpy as np
import pytest

from mmada_jax.data import rows
from mmada_jax.evaluate import Evaluator, eval_config
from mmada_jax.rl import rollout as ro
from mmada_jax.sampling import readback
from mmada_jax.sampling.text import TextSamplerConfig
from mmada_jax.tokenizers.text import ByteTokenizer
from test_sampling_common import tiny_model

TOK = ByteTokenizer()
L = TOK.layout


def enc(s):
    return list(s.encode())


def test_mask_image_span_masks_exactly_the_image_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, L.model_vocab_size, size=300)
    ids[:5] = [L.mmu, L.soi, L.image_offset, L.image_offset + L.codebook_size - 1, L.eoi]
    out = np.asarray(readback.mask_image_span(ids.tolist(), L))
    image = (ids >= L.image_offset) & (ids < L.image_offset + L.codebook_size)
    assert image.sum() >= 3
    assert (out[image] == L.mask).all() and (out[~image] == ids[~image]).all()


def test_first_sentence_cut_is_the_first_training_cut():
    text = ("<think> The shapes: a circle in the top and a square in the center. Counting the "
            "circle shapes: there is 1. </think> 1")
    k = readback.first_sentence_cut(text, enc(text), enc)
    assert k == len(enc("<think> The shapes: a circle in the top and a square in the center."))
    assert k == rows.sentence_cuts(text, enc(text), enc)[0]
    one = "<think> There are two shapes. </think> A red square and a blue circle."
    assert readback.first_sentence_cut(one, enc(one), enc) is None  # nothing to read back
    assert readback.first_sentence_cut("0", enc("0"), enc) is None


def test_plan_and_merge():
    a = "<think> The colors: red in the top. Counting the red shapes: there is 1. </think> 1"
    b = "<think> One sentence only. </think> yes"
    prompts = [[L.mmu, L.soi, L.image_offset + 3, L.image_offset + 9, L.eoi, *enc("q?")],
               [L.mmu, L.soi, L.image_offset + 1, L.image_offset + 2, L.eoi, *enc("r?")]]
    p = readback.plan(prompts, [enc(a), enc(b)], [a, b], L, enc)
    k = len(enc("<think> The colors: red in the top."))
    assert p.rows == [0] and p.prefixes == [enc(a)[:k]]
    assert p.prompts == [[L.mmu, L.soi, L.mask, L.mask, L.eoi, *enc("q?"), *enc(a)[:k]]]
    merged = readback.merge([a, b], p, [enc(" Counting the red shapes: there are 2. </think> 2")],
                            lambda ids: bytes(ids).decode())
    assert merged == [a.replace("there is 1. </think> 1", "there are 2. </think> 2"), b]
    with pytest.raises(ValueError, match="pass-2"):
        readback.merge([a, b], p, [], lambda ids: "")
    with pytest.raises(ValueError, match="readback"):
        readback.plan(prompts, [enc(a)], [a, b], L, enc)


def test_pass2_config_keeps_tokens_per_step():
    cfg = TextSamplerConfig(gen_length=64, steps=64, block_length=8)
    c2 = readback.pass2_config(cfg, 32)
    assert (c2.gen_length, c2.steps, c2.block_length) == (32, 32, 8)
    c3 = readback.pass2_config(TextSamplerConfig(gen_length=48, steps=24, block_length=8), 24)
    assert (c3.gen_length, c3.steps) == (24, 12)
    for bad in (12, 0, 128):
        with pytest.raises(ValueError, match="readback_gen_length"):
            readback.pass2_config(cfg, bad)
    c4 = readback.pass2_config(TextSamplerConfig(gen_length=64, steps=8, block_length=8), 24)
    assert (c4.gen_length, c4.steps) == (24, 3)  # one step per block, as in pass 1
    with pytest.raises(ValueError, match="config.eval.readback"):
        readback.check_mode("sentence")


def _evaluator(monkeypatch, mode):
    """An Evaluator over the tiny random model, pass 1 scripted, pass 2 the real sampler."""
    model, params, layout = tiny_model()
    assert layout == L
    e = eval_config()
    e.update(dict(batch_size=4, prompt_len=16, readback=mode, readback_gen_length=8))
    e.text_sampler.update(dict(gen_length=96, steps=48, block_length=8))
    config = types.SimpleNamespace(data=types.SimpleNamespace(image_size=8))
    setup = types.SimpleNamespace(model=model, layout=L)
    ev = Evaluator(config, setup, params, TOK, None, e)
    monkeypatch.setattr(ro, "scene_codes",
                        lambda scenes, tok, size: np.stack([np.full(4, int(s)) for s in scenes]))
    monkeypatch.setattr(ro, "mmu_prompt", lambda codes, q, layout, tok: [
        L.mmu, L.soi, *layout.image_ids(np.asarray(codes)).tolist(), L.eoi, *enc(q)])
    return ev


SCRIPT = {  # question -> pass-1 answer
    "a?": "<think> A circle in the top. Counting circles: 0. </think> 0",
    "b?": "<think> No listing. </think> blue",
    "c?": "<think> Red in the top, red in the center. Counting red: 1. </think> 1",
}


def test_evaluator_redecodes_after_the_first_sentence_without_the_image(monkeypatch):
    ev = _evaluator(monkeypatch, "first_sentence")
    real, calls, second = ro.sample_text, [], []

    def fake(model, params, ids, layout, tok, cfg, key, prompt_len=None):
        calls.append((cfg.gen_length, [list(x) for x in ids], prompt_len))
        if cfg.gen_length == 96:  # pass 1: scripted answers after the fixed-width prompt
            tokens, pm = ro.fixed_left_pad(ids, L.eos, prompt_len)
            gen = np.full((len(ids), 96), L.eos, np.int32)
            texts = []
            for i, p in enumerate(ids):
                t = SCRIPT[bytes(p[7:]).decode()]
                gen[i, :len(enc(t))] = enc(t)
                texts.append(t)
            return types.SimpleNamespace(tokens=np.concatenate([tokens, gen], 1),
                                         completions=texts)
        second.append(real(model, params, ids, layout, tok, cfg, key, prompt_len))
        return second[-1]

    monkeypatch.setattr(ro, "sample_text", fake)
    items = [dict(scene=str(i), question=q) for i, q in enumerate(["a?", "b?", "c?"])]
    out = ev.answer(items, with_image=True)
    assert ev.last_readback == (2, 3)  # "b?" has one worked sentence; the pad row not counted
    (g1, p1, w1), (g2, p2, w2) = calls
    assert (g1, w1, g2, w2) == (96, 16, 8, 16 + 96)
    heads = {"a?": "<think> A circle in the top.", "c?": "<think> Red in the top, red in the center."}
    assert len(p2) == 4  # re-decoded rows padded to the batch: one compiled shape
    for row, q in zip(p2, ["a?", "c?"]):
        assert row == [L.mmu, L.soi, *[L.mask] * 4, L.eoi, *enc(q), *enc(heads[q])]
        assert not any(L.image_offset <= t < L.image_offset + L.codebook_size for t in row)
    assert out[1] == SCRIPT["b?"]
    from mmada_jax.sampling.prompts import completion_ids
    tails = completion_ids(second[0].tokens, w2, L)
    for j, (i, q) in enumerate(((0, "a?"), (2, "c?"))):
        assert out[i] == ro.decode_text(TOK, enc(heads[q]) + tails[j], L)
    ev_off = _evaluator(monkeypatch, "none")
    calls.clear()
    assert ev_off.answer(items, with_image=True) == [SCRIPT[q] for q in ("a?", "b?", "c?")]
    assert len(calls) == 1 and ev_off.last_readback is None


def test_readback_on_a_model_trained_without_readback_rows_warns(caplog):
    import ml_collections
    model, params, _ = tiny_model()
    e = eval_config()
    e.update(dict(readback="first_sentence", readback_gen_length=8))
    e.text_sampler.update(dict(gen_length=16, steps=16, block_length=8))
    setup = types.SimpleNamespace(model=model, layout=L)
    for prob, warned in ((0.0, True), (0.25, False)):
        caplog.clear()
        config = ml_collections.ConfigDict(dict(data=dict(image_size=8, readback_prob=prob)))
        with caplog.at_level("WARNING"):
            Evaluator(config, setup, params, TOK, None, e)
        assert ("trained without readback rows" in caplog.text) == warned


def test_bad_readback_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="config.eval.readback"):
        _evaluator(monkeypatch, "last_sentence")
    model, params, _ = tiny_model()
    e = eval_config()
    e.update(dict(readback="first_sentence", readback_gen_length=20))
    with pytest.raises(ValueError, match="readback_gen_length"):
        Evaluator(types.SimpleNamespace(data=None), types.SimpleNamespace(model=model, layout=L),
                  params, TOK, None, e)
