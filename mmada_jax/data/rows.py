"""Row builders in the release's token layouts (spec section 2), through a text encoder
`encode(str) -> list[int]` that adds no specials, and a `TokenLayout`.

Rows are numpy dicts: `tokens` int32, `key_mask` bool, `target_mask` bool, and `image_start`
(int, -1 if the row has no image): the image span holds `layout.mask` placeholders until
`fill_image_tokens` writes `layout.image_ids(codes)` there, so codes can be computed in a batch on
the accelerator after the workers built the rows.

Layouts (L = config.seq_len, V = image tokens, T = max_text_len):
- t2i: `[iPAD]*k <|t2i|> <bos> caption <eos> <|soi|> img*V <|eoi|>`, the text part left-padded
  to T + 1 (longer: its first T tokens then eos); key_mask False on the pads; target_mask on the
  image tokens. Length T + V + 3; if L is larger the row is right-padded with eos that no key sees.
- mmu: `<|mmu|> <|soi|> img*V <|eoi|>` + chat prompt (bos ... assistant header + newline) +
  answer `<|eot_id|>` `<eos>`, eos-padded to L; target_mask False up to the end of the prompt, True
  after (answer, eos and the eos pads); key_mask all True.
- chat / CoT: as mmu without the image part (CoT answers are `<think> ... </think> answer`).
- lm: `<bos> text <eos>`, eos-padded; target_mask and key_mask all True.
Too long for L: the answer (or lm text) is cut so the row still ends in eos; a prompt that leaves
no room for one answer token raises `RowTooLong` (the pipeline skips and counts it).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from mmada_jax.token_layout import TokenLayout
from mmada_jax.tokenizers.chat import chat_prompt_ids

Encode = Callable[[str], list]


class RowTooLong(ValueError):
    """The fixed part of a row does not fit in seq_len."""


def t2i_length(max_text_len: int, num_image_tokens: int) -> int:
    return max_text_len + num_image_tokens + 3


def t2i_row(caption_ids: Sequence[int], layout: TokenLayout, max_text_len: int,
            num_image_tokens: int, seq_len: int | None = None) -> dict:
    """A t2i row for `caption_ids` (empty = unconditional) with a placeholder image span."""
    n = t2i_length(max_text_len, num_image_tokens)
    seq_len = seq_len or n
    if seq_len < n:
        raise RowTooLong(f"t2i row needs max_text_len + num_image_tokens + 3 = {n} tokens but "
                         f"seq_len is {seq_len}")
    text = [layout.t2i, layout.bos, *caption_ids, layout.eos]
    if len(text) > max_text_len + 1:
        text = text[:max_text_len] + [layout.eos]
    k = max_text_len + 1 - len(text)
    tokens = np.full((seq_len,), layout.eos, np.int32)
    tokens[:max_text_len + 1] = [layout.ipad] * k + text
    tokens[max_text_len + 1] = layout.soi
    tokens[max_text_len + 2:max_text_len + 2 + num_image_tokens] = layout.mask
    tokens[n - 1] = layout.eoi
    key = np.zeros((seq_len,), bool)
    key[k:n] = True
    target = np.zeros((seq_len,), bool)
    target[max_text_len + 2:n - 1] = True
    return dict(tokens=tokens, key_mask=key, target_mask=target,
                image_start=np.int32(max_text_len + 2))


def prompt_answer_segment(prompt_ids: Sequence[int], answer_ids: Sequence[int],
                          layout: TokenLayout, seq_len: int, num_image_tokens: int = 0,
                          close_turn: bool = True) -> dict:
    """Unpadded mmu (num_image_tokens > 0) or chat segment: prefix + prompt + answer
    [+ <|eot_id|>] + <eos>, cut to seq_len keeping the final eos."""
    prefix = ([layout.mmu, layout.soi] + [layout.mask] * num_image_tokens + [layout.eoi]
              if num_image_tokens else [])
    head = prefix + list(prompt_ids)
    tail = list(answer_ids) + ([layout.eot_id] if close_turn else [])
    if len(head) + 2 > seq_len:
        raise RowTooLong(f"prompt of {len(head)} tokens (image part included) leaves no room for "
                         f"an answer in seq_len {seq_len}")
    tail = tail[:seq_len - len(head) - 1] + [layout.eos]
    tokens = np.asarray(head + tail, np.int32)
    target = np.zeros(tokens.shape, bool)
    target[len(head):] = True
    return dict(tokens=tokens, key_mask=np.ones(tokens.shape, bool), target_mask=target,
                image_start=np.int32(2 if num_image_tokens else -1),
                truncated=len(list(answer_ids)) + len(head) + 2 > seq_len)


def readback_segment(seg: dict, answer_len: int, rng: np.random.Generator,
                     min_prefix: float, cuts: Sequence[int] | None = None,
                     first_cut: bool = False) -> dict:
    """A 'readback' version of an unpadded mmu segment (in place, returned): the image span keeps
    its mask placeholders (`image_start` -1, so it is never filled) and the first k of the
    answer's n tokens join the prompt (visible, unscored); the rest of the answer, <|eot_id|> and
    eos stay the target. k is uniform in [lo, n - 1], lo = max(1, ceil(min_prefix * n)), or, with
    `cuts` (allowed k, e.g. `sentence_cuts`), uniform over the cuts in that range (`first_cut`:
    the smallest of them); a segment with no such cut is returned unchanged (it keeps its
    image). The only way to predict the end of a readback answer (a CoT's count or position) is
    to read it from the worked answer before it. answer_len: the answer's tokens (without
    <|eot_id|>)."""
    if not 0.0 <= min_prefix < 1.0:
        raise ValueError(f"readback: min_prefix {min_prefix} not in [0, 1)")
    target = seg["target_mask"]
    start = int(np.argmax(target)) if target.any() else len(target)
    n = min(int(answer_len), int(target.sum()) - 1)  # the closing eos is never made visible
    if n >= 2 and int(seg["image_start"]) >= 0:
        lo = min(max(1, int(np.ceil(min_prefix * n))), n - 1)
        if cuts is None:
            k = int(rng.integers(lo, n))  # in [lo, n - 1]
        else:
            allowed = sorted({int(c) for c in cuts if lo <= int(c) <= n - 1})
            if not allowed:
                return seg
            k = allowed[0] if first_cut else allowed[int(rng.integers(len(allowed)))]
        target[start:start + k] = False
    seg["image_start"] = np.int32(-1)
    return seg


def sentence_cuts(text: str, answer_ids: Sequence[int], encode: Encode) -> list[int]:
    """Token counts k at which the worked answer `text` (encoded as `answer_ids`) has just ended
    a sentence that another sentence of the worked part follows: the readback cuts that leave
    reasoning to predict from what is visible. The worked part is inside <think> ... </think>
    when the text has one; a sentence ends at a '.' before a space. No cut follows the last worked
    sentence (what remains after it, the final answer or a caption, is not read from the worked
    part). A cut is kept only where encode(text[:end]) is exactly the first k answer ids, so a
    tokenizer that merges across the boundary drops it, never shifts it."""
    opened, closed = text.find("<think>"), text.find("</think>")
    lo, hi = (opened + len("<think>"), closed) if 0 <= opened < closed else (0, len(text))
    worked = text[lo:hi]
    ends = [lo + i + 1 for i, ch in enumerate(worked[:-1]) if ch == "." and worked[i + 1] == " "]
    ends = [e for e in ends if text[e:hi].strip(" .")]  # another worked sentence follows
    ids, cuts = list(answer_ids), []
    for e in ends:
        pre = list(encode(text[:e]))
        if 0 < len(pre) < len(ids) and ids[:len(pre)] == pre:
            cuts.append(len(pre))
    return cuts


def lm_segment(text_ids: Sequence[int], layout: TokenLayout, seq_len: int) -> dict:
    """Unpadded `<bos> text <eos>`, the text cut to seq_len - 2 tokens."""
    ids = [layout.bos, *list(text_ids)[:seq_len - 2], layout.eos]
    tokens = np.asarray(ids, np.int32)
    ones = np.ones(tokens.shape, bool)
    return dict(tokens=tokens, key_mask=ones, target_mask=ones.copy(), image_start=np.int32(-1),
                truncated=len(text_ids) > seq_len - 2)


def find_spans(ids: Sequence[int], patterns: Sequence[Sequence[int]]) -> np.ndarray:
    """[len(ids)] bool: True on every occurrence of any pattern (a token-id sequence) in ids."""
    ids = list(ids)
    out = np.zeros((len(ids),), bool)
    for pat in patterns:
        pat, k = list(pat), len(pat)
        if k == 0:
            continue
        for i in range(len(ids) - k + 1):
            if ids[i:i + k] == pat:
                out[i:i + k] = True
    return out


def salient_segment(seg: dict, answer_ids: Sequence[int],
                    patterns: Sequence[Sequence[int]]) -> bool:
    """Make an unpadded mmu segment (in place) a 'salient' row: its targets are only the
    answer's salient tokens (occurrences of `patterns`, e.g. the tokens of "red" or "circle"),
    everything else visible, its eos padding unscored (`pads_scored` False). The masked
    diffusion loss then asks for those words with the rest of the answer in view: in a caption,
    the color of the object whose shape and cell are shown, which only the image holds
    (salient span masking). Returns False, leaving the segment unchanged, when the answer holds
    none of them or was cut short."""
    target = seg["target_mask"]
    start = int(np.argmax(target)) if target.any() else len(target)
    n = len(answer_ids)
    if start + n > len(target):
        return False
    hit = find_spans(answer_ids, patterns)
    if not hit.any():
        return False
    target[:] = False
    target[start:start + n] = hit
    seg["pads_scored"] = False
    return True


def pad_segment(seg: dict, layout: TokenLayout, seq_len: int) -> dict:
    """Right-pad an unpadded segment with eos (key True; target True, LLaDA scores eos pads,
    unless the segment says `pads_scored` False)."""
    n = len(seg["tokens"])
    if n > seq_len:
        raise RowTooLong(f"segment of {n} tokens exceeds seq_len {seq_len}")
    tokens = np.full((seq_len,), layout.eos, np.int32)
    tokens[:n] = seg["tokens"]
    key = np.ones((seq_len,), bool)
    key[:n] = seg["key_mask"]
    target = np.full((seq_len,), bool(seg.get("pads_scored", True)))
    target[:n] = seg["target_mask"]
    return dict(tokens=tokens, key_mask=key, target_mask=target,
                image_start=np.int32(seg["image_start"]))


def pack_segments(segs: Sequence[dict], layout: TokenLayout, seq_len: int) -> dict:
    """Concatenate text-only segments into one row with segment_ids 1..n; the eos tail gets
    segment id 0 (its own segment, scored as eos padding)."""
    total = sum(len(s["tokens"]) for s in segs)
    if total > seq_len:
        raise RowTooLong(f"packed segments of {total} tokens exceed seq_len {seq_len}")
    if any(int(s["image_start"]) >= 0 for s in segs):
        raise ValueError("pack_segments: rows with images cannot be packed (config.data.pack lists "
                         "a task whose mixture has image components)")
    row = pad_segment(dict(tokens=np.concatenate([s["tokens"] for s in segs]),
                           key_mask=np.concatenate([s["key_mask"] for s in segs]),
                           target_mask=np.concatenate([s["target_mask"] for s in segs]),
                           image_start=-1), layout, seq_len)
    seg_ids = np.zeros((seq_len,), np.int32)
    pos = 0
    for i, s in enumerate(segs):
        seg_ids[pos:pos + len(s["tokens"])] = i + 1
        pos += len(s["tokens"])
    row["segment_ids"] = seg_ids
    return row


def conversation_ids(messages: Sequence[dict], layout: TokenLayout, encode: Encode,
                     think: bool = False) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of a conversation whose last message is the assistant's answer:
    the prompt is the chat template of the earlier turns plus the assistant header."""
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("conversation: the last message must be the assistant's answer")
    prompt = chat_prompt_ids(messages[:-1], layout, encode, add_generation_prompt=True,
                             think=think)
    return prompt, list(encode(messages[-1]["content"]))


def fill_image_tokens(batch_rows: dict, codes: np.ndarray, layout: TokenLayout) -> None:
    """Write `layout.image_ids(codes)` ([B, h, w] or [B, V]) into each row's image span, in place.
    Rows with image_start < 0 are left alone."""
    tokens, starts = batch_rows["tokens"], np.asarray(batch_rows["image_start"])
    flat = np.asarray(codes).reshape(len(starts), -1)
    if (flat < 0).any() or (flat >= layout.codebook_size).any():
        raise ValueError(f"image codes outside [0, {layout.codebook_size})")
    ids = layout.image_ids(flat).astype(np.int32)
    v = flat.shape[1]
    for i, s in enumerate(starts):
        if s >= 0:
            tokens[i, s:s + v] = ids[i]
