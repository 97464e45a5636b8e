"""Text tokenizers: byte, SentencePiece and Hugging Face backends, specials, chat template."""

import json
import os

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mmada_jax.token_layout import SPECIAL_NAMES, SPECIAL_STRINGS, TokenLayout
from mmada_jax.tokenizers import (ByteTokenizer, HFTokenizer, SentencePieceTokenizer,
                                  build_id_map, load_text_tokenizer)
from mmada_jax.tokenizers.chat import THINK_PREFIX, chat_prompt_ids
from mmada_jax.tokenizers.sentencepiece_tok import train_sentencepiece

CORPUS = [
    "The red circle is left of the blue square.",
    "A small green triangle sits above two large yellow squares.",
    "How many shapes are there? There are 3 shapes.",
    "Héllo wörld — ünïcode ✓ 日本語 text, with punctuation!",
    "def f(x):\n    return x * 2  # code\twith tabs",
] * 8

UNICODE = ["  leading and trailing  ", "ünïcode ✓ 日本語 𝔘𝔫𝔦 emoji 🙂 and \n newline\ttab",
           "mixed<|soi|>specials[iPAD][iPAD]<|eoi|> inside <|mdm_mask|>text",
           "<|startoftext|>", "", "ﬁ ligature (NFKC would change it)", "digits 1234567890"]


@pytest.fixture(scope="module")
def sp_tok(tmp_path_factory):
    path = tmp_path_factory.mktemp("sp") / "tok.model"
    base = 400
    train_sentencepiece(CORPUS, path, base_vocab_size=base)
    return SentencePieceTokenizer(str(path), TokenLayout.custom(base, 64))


def _train_hf(tmp_path, special_first):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [SPECIAL_STRINGS[n] for n in SPECIAL_NAMES]
    trainer = trainers.BpeTrainer(vocab_size=330, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=specials if special_first else [])
    tok.train_from_iterator(CORPUS, trainer=trainer)
    if not special_first:
        tok.add_special_tokens(specials)
    d = tmp_path / ("hf_first" if special_first else "hf_last")
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    return d, tok


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory):
    d, tok = _train_hf(tmp_path_factory.mktemp("hf"), special_first=True)
    base = tok.get_vocab_size() - len(SPECIAL_NAMES)
    return load_text_tokenizer(str(d), TokenLayout.custom(base, 64))


@pytest.fixture(scope="module", params=["bytes", "sp", "hf"])
def tok(request, sp_tok, hf_tok):
    return {"bytes": ByteTokenizer(codebook_size=64), "sp": sp_tok, "hf": hf_tok}[request.param]


def test_roundtrip_unicode(tok):
    for text in UNICODE + CORPUS[:5]:
        ids = tok.encode(text)
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == text


def test_specials_never_split(tok):
    layout = tok.layout
    for s, i in layout.special_strings().items():
        assert tok.encode(s) == [i], s
        ids = tok.encode(f"ab{s}cd{s}")
        assert ids.count(i) == 2
        assert tok.decode([i]) == s
    # Partial surface strings are ordinary text.
    ids = tok.encode("<|soi|")
    assert layout.soi not in ids and tok.decode(ids) == "<|soi|"
    ids = tok.encode("x<|soi|><|eoi|>y")
    assert ids[1:3] == [layout.soi, layout.eoi]
    assert tok.decode(ids, skip_special_tokens=True) == "xy"
    # Ordinary text never yields special ids.
    special_ids = set(layout.special_strings().values())
    assert not special_ids & set(tok.encode(" ".join(CORPUS)))


def test_chat_template_exact(tok):
    L = tok.layout
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2? ✓"}]
    expected = ("<|startoftext|><|start_header_id|>system<|end_header_id|>\nBe brief.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n2+2? ✓<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n")
    ids = tok.chat(msgs)
    assert tok.decode(ids) == expected
    assert ids == tok.encode(expected)
    assert ids[0] == L.bos and ids.count(L.start_header) == 3 and ids.count(L.eot_id) == 2
    think = tok.chat(msgs, think=True)
    assert tok.decode(think) == expected.replace("\n2+2?", "\n" + THINK_PREFIX + "2+2?")
    assert "<think>" in THINK_PREFIX and tok.with_thinking("q") == THINK_PREFIX + "q"
    no_gen = tok.decode(tok.chat(msgs, add_generation_prompt=False))
    assert no_gen == expected[:-len("<|start_header_id|>assistant<|end_header_id|>\n")]


def test_chat_matches_piecewise_for_bytes():
    tok = ByteTokenizer(codebook_size=64)
    msgs = [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "again"}]
    for think in (False, True):
        assert tok.chat(msgs, think=think) == chat_prompt_ids(msgs, tok.layout, tok.encode,
                                                              think=think)


def test_batch_encode_padding(tok):
    texts = ["a", "bbb ccc", "日本"]
    rows = [tok.encode(t) for t in texts]
    n = max(map(len, rows))
    for side in ("left", "right"):
        ids, mask = tok.batch_encode(texts, max_len=n + 2, padding_side=side)
        assert ids.shape == mask.shape == (3, n + 2) and ids.dtype == np.int32
        for b, r in enumerate(rows):
            assert mask[b].sum() == len(r)
            assert ids[b][mask[b]].tolist() == r
            assert (ids[b][~mask[b]] == tok.layout.pad).all()
            real = np.flatnonzero(mask[b])
            if side == "right":
                assert real.tolist() == list(range(len(r)))
            else:
                assert real.tolist() == list(range(n + 2 - len(r), n + 2))
    ids, mask = tok.batch_encode(texts, pad_id=7)
    assert ids.shape == (3, n) and (ids[~mask] == 7).all()
    with pytest.raises(ValueError, match="max_len"):
        tok.batch_encode(texts, max_len=1)
    ids, mask = tok.batch_encode(texts, max_len=1, truncate=True)
    assert ids[:, 0].tolist() == [r[0] for r in rows] and mask.all()
    with pytest.raises(ValueError, match="padding_side"):
        tok.batch_encode(texts, padding_side="middle")


def test_decode_rejects_image_ids(tok):
    with pytest.raises(ValueError, match="not a text token"):
        tok.decode([tok.layout.image_offset + 3])


def test_byte_tokenizer_ids():
    tok = ByteTokenizer(codebook_size=16)
    assert tok.layout == TokenLayout.custom(256, 16)
    assert tok.encode("é") == [0xC3, 0xA9]
    assert tok.encode("A<|endoftext|>") == [65, tok.layout.eos]


def test_sentencepiece_layout_and_loader(sp_tok, tmp_path):
    # Specials are user symbols inside the model, remapped to the layout's ids.
    assert sp_tok.id_map.mode == "compact"
    for s in sp_tok.layout.special_strings():
        assert sp_tok._backend_special_id(s) is not None
    path = sp_tok.path
    again = load_text_tokenizer(path, sp_tok.layout)
    assert isinstance(again, SentencePieceTokenizer)
    assert again.encode(UNICODE[1]) == sp_tok.encode(UNICODE[1])
    d = tmp_path / "spdir"
    d.mkdir()
    (d / "x.model").write_bytes(open(path, "rb").read())
    assert isinstance(load_text_tokenizer({"text_tokenizer": {"path": str(d)}}, sp_tok.layout),
                      SentencePieceTokenizer)
    with pytest.raises(ValueError, match="cannot align"):
        SentencePieceTokenizer(path, TokenLayout.custom(399, 64))


def test_hf_identity_layout(tmp_path):
    """Specials added after training sit at the end; a layout built on those ids passes through
    unchanged (as LLaDA's tokenizer.json does with TokenLayout.mmada_8b())."""
    d, tok = _train_hf(tmp_path, special_first=False)
    specials = {n: tok.token_to_id(SPECIAL_STRINGS[n]) for n in SPECIAL_NAMES}
    # Leave one special out of the tokenizer's own ids: pretend 'r2i' is a reserved id.
    layout = TokenLayout(tok.get_vocab_size(), 32, tok.get_vocab_size() + 32, specials)
    hf = load_text_tokenizer(str(d / "tokenizer.json"), layout)
    assert isinstance(hf, HFTokenizer) and hf.id_map.mode == "identity"
    text = "x<|t2i|>ü 日本"
    raw = tok.encode(text, add_special_tokens=False).ids
    assert hf.encode(text) == raw
    assert hf.decode(raw) == text


def test_hf_special_first_is_compact(hf_tok):
    assert hf_tok.id_map.mode == "compact"
    assert hf_tok.encode("<|mdm_mask|>") == [hf_tok.layout.mask]


def test_id_map_reference():
    """build_id_map against a direct construction on an awkward layout."""
    rng = np.random.default_rng(0)
    base = 37
    layout = TokenLayout.custom(base, 5)
    strings = [SPECIAL_STRINGS[n] for n in SPECIAL_NAMES]
    # Backend of 37 + 17 pieces whose specials sit at random positions.
    size = base + len(strings)
    pos = rng.choice(size, len(strings), replace=False)
    m = build_id_map(size, dict(zip(strings, pos.tolist())), layout)
    assert m.mode == "compact"
    plain = [i for i in range(size) if i not in set(pos.tolist())]
    for k, b in enumerate(plain):
        assert m.to_layout[b] == k and m.to_backend[k] == b
    for s, b in zip(strings, pos):
        assert m.to_layout[b] == layout.special_strings()[s]
    assert sorted(m.to_layout.tolist()) == list(range(layout.text_vocab_size))
    with pytest.raises(ValueError, match="cannot align"):
        build_id_map(size + 1, dict(zip(strings, pos.tolist())), layout)


def test_loader_errors(tmp_path):
    layout = TokenLayout.custom(256, 8)
    with pytest.raises(FileNotFoundError):
        load_text_tokenizer(str(tmp_path / "missing.model"), layout)
    bad = tmp_path / "vocab.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="cannot tell"):
        load_text_tokenizer(str(bad), layout)
    with pytest.raises(ValueError, match="exactly one .model"):
        load_text_tokenizer(str(tmp_path), layout)
    broken = tmp_path / "tokenizer.json"
    broken.write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ValueError, match="tokenizer.json"):
        load_text_tokenizer(str(broken), layout)
    with pytest.raises(ValueError, match="kind"):
        load_text_tokenizer({"kind": "wordpiece", "path": "x"}, layout)
    assert isinstance(load_text_tokenizer("bytes", layout), ByteTokenizer)
    assert isinstance(load_text_tokenizer({"kind": "bytes"}, layout), ByteTokenizer)
    assert os.path.exists(tmp_path)
