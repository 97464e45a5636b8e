"""Prompt rows for the samplers, in the training layouts (spec section 2).

- text: the chat template (`bos <|start_header_id|>user<|end_header_id|>\\n ... <|eot_id|>` then
  the assistant header), or raw ids; batched with left padding (eos) and a key mask.
- t2i: `mmada_jax.data.rows.t2i_row` (the training builder): `[iPAD]*k <|t2i|> <bos> caption
  <eos> <|soi|> [mask]*V <|eoi|>`, the text part left-padded to max_text_len + 1; the
  unconditional row has an empty caption.
- mmu: `<|mmu|> <|soi|> img*V <|eoi|>` + chat prompt (ending in the assistant header).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from mmada_jax.data import rows as rows_lib
from mmada_jax.tokenizers.chat import chat_prompt_ids

Encode = Callable[[str], list]


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, max_len: int | None = None,
             what: str = "prompt"):
    """Left-pad id lists to one length. Returns (tokens int32 [B, P], key_mask bool [B, P]).

    A prompt longer than `max_len` raises ValueError naming the prompt and the limit."""
    if not prompts:
        raise ValueError(f"no {what}s given")
    lens = [len(p) for p in prompts]
    for i, n in enumerate(lens):
        if n == 0:
            raise ValueError(f"{what} {i} is empty")
        if max_len is not None and n > max_len:
            raise ValueError(f"{what} {i} has {n} tokens; the limit is {max_len}")
    width = max(lens)
    tokens = np.full((len(prompts), width), pad_id, np.int32)
    mask = np.zeros((len(prompts), width), bool)
    for i, p in enumerate(prompts):
        tokens[i, width - len(p):] = p
        mask[i, width - len(p):] = True
    return tokens, mask


def chat_ids(question: str, layout, encode: Encode, think: bool = False,
             system: str | None = None) -> list[int]:
    """A one-turn chat prompt ending in the assistant header."""
    msgs = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": question}]
    return chat_prompt_ids(msgs, layout, encode, add_generation_prompt=True, think=think)


def text_prompts(texts: Sequence[str], layout, encode: Encode, chat: bool = True,
                 max_len: int | None = None, think: bool = False):
    """Batch of text prompts (chat template or `<bos> text`), left-padded with eos."""
    ids = [chat_ids(t, layout, encode, think) if chat else [layout.bos, *encode(t)]
           for t in texts]
    return left_pad(ids, layout.eos, max_len)


def t2i_prompts(captions: Sequence[str], layout, encode: Encode, max_text_len: int,
                num_image_tokens: int) -> dict:
    """t2i rows for captions plus the unconditional row.

    Returns dict(tokens [B, L], key_mask [B, L], uncond_tokens [L], uncond_key_mask [L],
    image_start int), L = max_text_len + V + 3."""
    rows = [rows_lib.t2i_row(encode(c), layout, max_text_len, num_image_tokens) for c in captions]
    un = rows_lib.t2i_row([], layout, max_text_len, num_image_tokens)
    return dict(tokens=np.stack([r["tokens"] for r in rows]),
                key_mask=np.stack([r["key_mask"] for r in rows]),
                uncond_tokens=un["tokens"], uncond_key_mask=un["key_mask"],
                image_start=int(un["image_start"]))


def mmu_ids(image_codes, question: str, layout, encode: Encode, think: bool = False) -> list[int]:
    """`<|mmu|> <|soi|> img <|eoi|>` + the chat prompt for `question`; codes [V] or [h, w]."""
    codes = np.asarray(image_codes).reshape(-1)
    if (codes < 0).any() or (codes >= layout.codebook_size).any():
        raise ValueError(f"image codes outside [0, {layout.codebook_size})")
    img = [int(i) for i in layout.image_ids(codes)]
    return [layout.mmu, layout.soi, *img, layout.eoi, *chat_ids(question, layout, encode, think)]


def mmu_prompts(image_codes, questions: Sequence[str], layout, encode: Encode,
                max_len: int | None = None, think: bool = False):
    """Batch of mmu prompts (one image code grid per question), left-padded with eos."""
    if len(image_codes) != len(questions):
        raise ValueError(f"{len(image_codes)} images for {len(questions)} questions")
    return left_pad([mmu_ids(c, q, layout, encode, think) for c, q in zip(image_codes, questions)],
                    layout.eos, max_len)


def completion_ids(tokens, prompt_len: int, layout) -> list[list[int]]:
    """Generated ids of each row [B, P + G], cut before the first <|eot_id|> / eos / mask."""
    stop = {int(layout.eot_id), int(layout.eos), int(layout.mask)}
    out = []
    for row in np.asarray(tokens)[:, prompt_len:]:
        ids = []
        for t in row.tolist():
            if t in stop:
                break
            ids.append(t)
        out.append(ids)
    return out
