"""Readback decoding for understanding: answer with the image, then re-decode everything after the
answer's first worked sentence with the image hidden, the way readback rows train it.

A readback row (`data.rows.readback_segment`) shows the model its prompt with the image span left
as mask placeholders and a prefix of the worked answer; the rest (the count, the position, the
final answer) is scored from that prefix alone. Readback decoding asks the same question at
inference: pass 1 samples an answer with the image; its first worked sentence (the listing or
inventory) is kept, cut where `rows.sentence_cuts` cuts in training; pass 2 samples the rest
after `<|mmu|> <|soi|> [MASK]*V <|eoi|> chat prompt + that sentence`, so whatever follows can
only be read from the listing, not from the image. Answers with no such cut (one worked sentence,
or a tokenization the cut cannot match exactly) keep their pass-1 text.

Off by default. Measured on GPU run 10's checkpoints (trained with readback rows) it lowers VQA
0.898 -> 0.703: with the image hidden, that model answers position questions with the last
listed cell (BENCHMARKS.md). It stays a probe of whether a model reads its own listing back.

Everything here is host-side glue around two calls of the pure text sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mmada_jax.data.rows import sentence_cuts

READBACK_MODES = ("none", "first_sentence")


def check_mode(mode: str) -> str:
    if mode not in READBACK_MODES:
        raise ValueError(f"config.eval.readback={mode!r}: known {READBACK_MODES}")
    return mode


def pass2_config(cfg, gen_length: int):
    """The pass-1 sampler config for the rest of the answer: `gen_length` tokens (a multiple of
    the block length, at most pass 1's) at pass 1's tokens per step. Pass 2's prompt is longer by
    the kept sentence, so a shorter generation keeps the row within the lengths seen in training
    (the rest of a worked answer is one or two short sentences and the final answer)."""
    import dataclasses
    g, b = int(gen_length), int(cfg.block_length)
    if g <= 0 or g > cfg.gen_length or g % b:
        raise ValueError(f"config.eval.readback_gen_length={g}: must be a positive multiple of "
                         f"text_sampler.block_length={b}, at most gen_length={cfg.gen_length}")
    # a valid cfg has steps = m * gen_length / b, so this is m steps per block again
    steps = cfg.steps * g // cfg.gen_length
    return dataclasses.replace(cfg, gen_length=g, steps=steps).validate()


def mask_image_span(prompt_ids: Sequence[int], layout) -> list[int]:
    """The prompt with every image-code id replaced by the mask id (a readback row's image)."""
    ids = np.asarray(prompt_ids, np.int64)
    return np.where(layout.is_image(ids), int(layout.mask), ids).astype(int).tolist()


def first_sentence_cut(text: str, answer_ids: Sequence[int],
                       encode: Callable[[str], Sequence[int]]) -> int | None:
    """Tokens of `answer_ids` (decoded as `text`) up to the end of its first worked sentence that
    another worked sentence follows (the first of `rows.sentence_cuts`), or None."""
    cuts = sentence_cuts(text, answer_ids, encode)
    return min(cuts) if cuts else None


@dataclass
class ReadbackPlan:
    """Pass-2 prompts for the answers that have a cut.

    rows: indices (into the pass-1 batch) re-decoded; prompts: their pass-2 prompt ids;
    prefixes: the kept answer ids of each (the first k generated ids)."""
    rows: list[int]
    prompts: list[list[int]]
    prefixes: list[list[int]]


def plan(prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]],
         texts: Sequence[str], layout, encode) -> ReadbackPlan:
    """prompts: pass-1 prompt ids (with the image); answers: the generated ids of each (cut
    before <|eot_id|>/eos); texts: those ids decoded."""
    if not len(prompts) == len(answers) == len(texts):
        raise ValueError(f"readback: {len(prompts)} prompts, {len(answers)} answers, "
                         f"{len(texts)} texts")
    rows, out, prefixes = [], [], []
    for i, (p, a, t) in enumerate(zip(prompts, answers, texts)):
        k = first_sentence_cut(t, a, encode)
        if k is None:
            continue
        rows.append(i)
        prefixes.append(list(a[:k]))
        out.append(mask_image_span(p, layout) + list(a[:k]))
    return ReadbackPlan(rows, out, prefixes)


def merge(first: Sequence[str], plan_: ReadbackPlan, second_ids: Sequence[Sequence[int]],
          decode: Callable[[list[int]], str]) -> list[str]:
    """Pass-1 texts with each re-decoded row replaced by decode(its prefix + its pass-2 ids)."""
    if len(second_ids) != len(plan_.rows):
        raise ValueError(f"readback: {len(second_ids)} pass-2 answers for {len(plan_.rows)} rows")
    out = list(first)
    for r, pre, ids in zip(plan_.rows, plan_.prefixes, second_ids):
        out[r] = decode(list(pre) + list(ids))
    return out
