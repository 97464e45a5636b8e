"""Row layouts token by token (spec section 2) on a byte tokenizer, against hand-built references."""

import numpy as np
import pytest

from mmada_jax.data import codes as codes_lib
from mmada_jax.data import rows
from mmada_jax.token_layout import TokenLayout
from mmada_jax.tokenizers.chat import THINK_PREFIX

L = TokenLayout.custom(256, 64)


def enc(s):
    return list(s.encode())


@pytest.mark.parametrize("caption,T,V", [("a red circle", 20, 16), ("", 8, 4),
                                         ("x" * 30, 10, 9), ("abcdefgh", 9, 4)])
def test_t2i_row_exact(caption, T, V):
    r = rows.t2i_row(enc(caption), L, T, V)
    text = [L.t2i, L.bos] + enc(caption) + [L.eos]
    if len(text) > T + 1:  # release rule: first T tokens, then eos
        text = text[:T] + [L.eos]
    pads = T + 1 - len(text)
    want = [L.ipad] * pads + text + [L.soi] + [L.mask] * V + [L.eoi]
    assert r["tokens"].tolist() == want
    assert len(want) == T + V + 3
    assert r["key_mask"].tolist() == [False] * pads + [True] * (len(want) - pads)
    assert r["target_mask"].tolist() == [False] * (T + 2) + [True] * V + [False]
    assert int(r["image_start"]) == T + 2


def test_t2i_row_padded_to_longer_seq_len_and_too_short():
    r = rows.t2i_row(enc("hi"), L, 6, 4, seq_len=16)
    assert r["tokens"][13:].tolist() == [L.eos] * 3
    assert not r["key_mask"][13:].any() and not r["target_mask"][13:].any()
    with pytest.raises(rows.RowTooLong):
        rows.t2i_row(enc("hi"), L, 6, 4, seq_len=12)


def test_mmu_row_exact_prompt_mask():
    msgs = [dict(role="user", content="How many?"), dict(role="assistant", content="<think> 2 </think> 2")]
    prompt, answer = rows.conversation_ids(msgs, L, enc, think=True)
    want_prompt = ([L.bos, L.start_header] + enc("user") + [L.end_header] + enc("\n")
                   + enc(THINK_PREFIX + "How many?") + [L.eot_id, L.start_header]
                   + enc("assistant") + [L.end_header] + enc("\n"))
    assert prompt == want_prompt
    V, S = 4, len(want_prompt) + 40
    seg = rows.prompt_answer_segment(prompt, answer, L, S, num_image_tokens=V)
    row = rows.pad_segment(seg, L, S)
    head = [L.mmu, L.soi] + [L.mask] * V + [L.eoi] + want_prompt
    body = enc("<think> 2 </think> 2") + [L.eot_id, L.eos]
    want = head + body + [L.eos] * (S - len(head) - len(body))
    assert row["tokens"].tolist() == want
    assert row["target_mask"].tolist() == [False] * len(head) + [True] * (S - len(head))
    assert row["key_mask"].all()
    assert int(row["image_start"]) == 2 and want[2:2 + V] == [L.mask] * V
    # the prompt ends right after the last <|end_header_id|> and its newline
    last = max(i for i, t in enumerate(want) if t == L.end_header)
    assert len(head) == last + 2


def test_answer_truncation_keeps_eos_and_prompt_too_long():
    prompt = [L.bos] + enc("question")
    seg = rows.prompt_answer_segment(prompt, enc("a long answer here"), L, 14)
    assert seg["tokens"].tolist() == prompt + enc("a long")[:4] + [L.eos]
    assert seg["truncated"]
    with pytest.raises(rows.RowTooLong):
        rows.prompt_answer_segment(prompt, enc("x"), L, 10)


def test_lm_row_exact_and_truncated():
    seg = rows.lm_segment(enc("hello"), L, 10)
    row = rows.pad_segment(seg, L, 10)
    assert row["tokens"].tolist() == [L.bos] + enc("hello") + [L.eos] * 4
    assert row["target_mask"].all() and row["key_mask"].all()
    seg = rows.lm_segment(enc("abcdefghijkl"), L, 8)
    assert seg["tokens"].tolist() == [L.bos] + enc("abcdef") + [L.eos] and seg["truncated"]


def test_pack_segments():
    a, b = rows.lm_segment(enc("ab"), L, 16), rows.lm_segment(enc("xyz"), L, 16)
    row = rows.pack_segments([a, b], L, 12)
    assert row["tokens"].tolist() == ([L.bos] + enc("ab") + [L.eos, L.bos] + enc("xyz")
                                      + [L.eos] + [L.eos] * 3)
    assert row["segment_ids"].tolist() == [1] * 4 + [2] * 5 + [0] * 3
    with pytest.raises(rows.RowTooLong):
        rows.pack_segments([a, b, b], L, 12)


def test_fill_image_tokens():
    r = rows.t2i_row(enc("c"), L, 5, 4)
    batch = dict(tokens=np.stack([r["tokens"], r["tokens"]]), image_start=np.array([7, -1]))
    codes = np.array([[[1, 2], [3, 63]], [[0, 0], [0, 0]]])
    rows.fill_image_tokens(batch, codes, L)
    assert batch["tokens"][0, 7:11].tolist() == [L.image_offset + c for c in (1, 2, 3, 63)]
    assert (batch["tokens"][1] == r["tokens"]).all()
    with pytest.raises(ValueError):
        rows.fill_image_tokens(batch, codes + 64, L)


def test_pool_quantize_matches_loop_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 8, 12, 3)).astype(np.float32)[:, :8, :8]
    got = codes_lib.pool_quantize_codes(x, 4, 64)
    n = 4
    for b in range(3):
        for i in range(4):
            for j in range(4):
                m = x[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2].astype(np.float64).mean(axis=(0, 1))
                q = [int(min(n - 1, max(0, round((v + 1) / 2 * (n - 1))))) for v in m]
                assert got[b, i, j] == q[0] * 16 + q[1] * 4 + q[2]
    dec = codes_lib.pool_quantize_decode(got, 8, 64)
    assert dec.shape == (3, 8, 8, 3)
    assert (codes_lib.pool_quantize_codes(dec, 4, 64) == got).all()


@pytest.mark.parametrize("n_answer,min_prefix", [(17, 0.5), (2, 0.5), (9, 0.0), (30, 0.9)])
def test_readback_segment_hides_the_image_and_shows_an_answer_prefix(n_answer, min_prefix):
    """The image span stays mask placeholders and is never filled; exactly the first k answer
    tokens leave the target, k uniform over [max(1, ceil(min_prefix n)), n - 1]; the rest of the
    answer, <|eot_id|> and eos stay scored; no token changes."""
    prompt = enc("user: where?")
    answer = list(range(100, 100 + n_answer))
    V, S = 5, 7 + len(prompt) + n_answer + 6
    lo = min(max(1, int(np.ceil(min_prefix * n_answer))), n_answer - 1)
    rng, seen = np.random.default_rng(3), set()
    for _ in range(400):
        seg = rows.prompt_answer_segment(prompt, answer, L, S, num_image_tokens=V)
        tokens, start = seg["tokens"].copy(), 2 + V + 1 + len(prompt)
        rows.readback_segment(seg, n_answer, rng, min_prefix)
        assert int(seg["image_start"]) == -1 and (seg["tokens"] == tokens).all()
        t = seg["target_mask"]
        k = int(np.argmax(t)) - start
        assert not t[:start + k].any() and t[start + k:].all()
        assert lo <= k <= n_answer - 1
        seen.add(k)
        row = rows.pad_segment(seg, L, S + 3)
        rows.fill_image_tokens(dict(tokens=row["tokens"][None], image_start=row["image_start"][None]),
                               np.zeros((1, V), np.int32), L)
        assert (row["tokens"][2:2 + V] == L.mask).all()  # fill leaves a readback row's image alone
    assert seen == set(range(lo, n_answer))
    with pytest.raises(ValueError, match="min_prefix"):
        rows.readback_segment(rows.prompt_answer_segment(prompt, answer, L, S, V), n_answer, rng, 1.0)


def test_readback_segment_leaves_a_one_token_answer_scored():
    seg = rows.prompt_answer_segment(enc("q"), [7], L, 30, num_image_tokens=3)
    before = seg["target_mask"].copy()
    rows.readback_segment(seg, 1, np.random.default_rng(0), 0.5)
    assert (seg["target_mask"] == before).all() and int(seg["image_start"]) == -1


def test_sentence_cuts_end_worked_sentences_that_another_follows():
    """Cuts sit after each worked sentence ('.' then a space, inside <think>) that another worked
    sentence follows, in tokens; not after the last one, inside a decimal, or in the text after
    </think> (a caption); a boundary the tokenizer merges across is dropped, not shifted."""
    text = "<think> The shapes: a circle in the top. Pi is 3.14 here. Counting: 1. </think> 1. Ok."
    ids = enc(text)
    ends = [text.index(s) + len(s) for s in ("top.", "here.")]
    assert rows.sentence_cuts(text, ids, enc) == [len(enc(text[:e])) for e in ends]
    caption = "<think> There is one shape. </think> A red square. It is small."
    assert rows.sentence_cuts(caption, enc(caption), enc) == []
    plain = "A circle. A square. Two shapes."
    assert rows.sentence_cuts(plain, enc(plain), enc) == [9, 19]
    assert rows.sentence_cuts("no sentence here", enc("no sentence here"), enc) == []

    def merging(s):  # writes "p. " as one token: the prefix ending at "top." is not a prefix
        out, i = [], 0
        while i < len(s):
            if s[i:i + 3] == "p. ":
                out.append(999)
                i += 3
            else:
                out.append(ord(s[i]))
                i += 1
        return out
    assert rows.sentence_cuts(text, merging(text), merging) == [len(merging(text[:ends[1]]))]


@pytest.mark.parametrize("first_cut", [False, True])
def test_readback_segment_with_cuts_uses_only_allowed_cuts_past_min_prefix(first_cut):
    prompt, n = enc("user: how many?"), 40
    answer = list(range(100, 100 + n))
    V, S = 4, 7 + len(prompt) + n + 6
    cuts, min_prefix = [5, 12, 25, 31, 39, 40, 44], 0.3  # lo = 12; 40 and 44 are past n - 1
    rng, seen = np.random.default_rng(0), set()
    for _ in range(200):
        seg = rows.prompt_answer_segment(prompt, answer, L, S, num_image_tokens=V)
        start = 2 + V + 1 + len(prompt)
        rows.readback_segment(seg, n, rng, min_prefix, cuts, first_cut=first_cut)
        k = int(np.argmax(seg["target_mask"])) - start
        assert int(seg["image_start"]) == -1 and not seg["target_mask"][:start + k].any()
        seen.add(k)
    assert seen == ({12} if first_cut else {12, 25, 31, 39})
    seg = rows.prompt_answer_segment(prompt, answer, L, S, num_image_tokens=V)
    before = seg["target_mask"].copy()
    rows.readback_segment(seg, n, rng, 0.5, [5, 12])  # no cut at or past 20: left alone
    assert int(seg["image_start"]) >= 0 and (seg["target_mask"] == before).all()


def test_find_spans_marks_every_occurrence_of_every_pattern():
    ids = [5, 1, 2, 3, 1, 2, 9, 4, 1]
    got = rows.find_spans(ids, [[1, 2], [4], [], [7, 7]])
    assert got.tolist() == [False, True, True, False, True, True, False, True, False]
    assert not rows.find_spans([], [[1]]).any()
    assert not rows.find_spans([1], [[1, 2]]).any()  # a pattern longer than the ids


def test_salient_segment_scores_only_the_salient_answer_tokens_and_no_pads():
    """The targets become exactly the occurrences of the patterns inside the answer (not the
    prompt, not <|eot_id|> or eos), the padded row leaves its eos pads unscored, no token
    changes; an answer with none of them, or one cut by the row length, is left as it was."""
    prompt, answer = enc("user: describe red"), enc("a red circle and a blue circle")
    pats = [enc(" red"), enc(" circle")]
    seg = rows.prompt_answer_segment(prompt, answer, L, 80, num_image_tokens=4)
    tokens = seg["tokens"].copy()
    start = 2 + 4 + 1 + len(prompt)
    assert rows.salient_segment(seg, answer, pats)
    want = np.zeros(len(tokens), bool)
    text = bytes(answer).decode()
    for w in (" red", " circle"):
        i = text.find(w)
        while i >= 0:
            want[start + i:start + i + len(w)] = True
            i = text.find(w, i + 1)
    assert (seg["target_mask"] == want).all() and (seg["tokens"] == tokens).all()
    row = rows.pad_segment(seg, L, 96)
    assert not row["target_mask"][len(tokens):].any() and row["key_mask"].all()
    assert row["target_mask"].sum() == len(" red") + 2 * len(" circle")
    plain = rows.pad_segment(rows.prompt_answer_segment(prompt, answer, L, 80, 4), L, 96)
    assert plain["target_mask"][len(tokens):].all()  # ordinary rows still score their pads
    for seg, ans in ((rows.prompt_answer_segment(prompt, enc("nothing"), L, 80, 4),
                      enc("nothing")),
                     (rows.prompt_answer_segment(prompt, answer, L, start + 8, 4), answer)):
        before = seg["target_mask"].copy()
        assert not rows.salient_segment(seg, ans, pats)
        assert (seg["target_mask"] == before).all() and "pads_scored" not in seg
