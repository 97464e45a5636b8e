"""Reason-then-draw (`<|r2i|>`) rows: knowledge-aware t2i with the reasoning before the image.

Row layout (L = seq_len, T = max_prompt_len, R = reasoning budget, V = image tokens):

    [iPAD]*k <|r2i|> <bos> prompt <eos> | <think> reasoning </think> <eos> eos... | <|soi|> img*V <|eoi|>
    '------- T + 1, left-padded -------' '------------- R, eos-padded ------------' '--- V + 2 ---'

The prompt part is left-padded like a t2i row (key mask False on the pads); the reasoning span is
right-padded with eos, which is visible and scored, as LLaDA answers are. Targets: the reasoning
span and the image tokens, trained with the `image_mask` objective (one masking ratio over the
joint response). At inference the reasoning span is sampled first (LLaDA, image still masked),
then the image (MaskGIT) with the reasoning fixed.

`knowledge_reasoning(scene)` writes the CoT for a ShapesWorld knowledge prompt (fact -> color and
shape -> what to draw where). `R2IRows` makes batches of such rows from the train split;
`WithR2I` adds them as one task to another batch source's batches.
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import knowledge, scenes as sc
from mmada_jax.data import images as image_lib


def r2i_length(max_prompt_len: int, reasoning_len: int, num_image_tokens: int) -> int:
    return max_prompt_len + 1 + reasoning_len + num_image_tokens + 2


def knowledge_reasoning(scene: sc.Scene) -> str:
    """`<think> ... </think>` for a knowledge scene: each item's fact, then the drawing."""
    parts = []
    for o in scene.objects:
        pos = sc.position_name(o.row, o.col)
        name = o.item or f"{o.color} {o.shape}"
        parts.append(f"A {name} is a {o.color} {o.shape}, so draw a {o.size} {o.color} "
                     f"{o.shape} in the {pos}.")
    return "<think> " + " ".join(parts) + " </think>"


def r2i_row(prompt_ids, reasoning_ids, layout, max_prompt_len: int, reasoning_len: int,
            num_image_tokens: int, seq_len: int | None = None) -> dict:
    """An r2i row with a placeholder image span (fill with `rows.fill_image_tokens`).

    Returns tokens, key_mask, target_mask, image_start, reasoning_start, truncated."""
    n = r2i_length(max_prompt_len, reasoning_len, num_image_tokens)
    seq_len = seq_len or n
    if seq_len < n:
        raise ValueError(f"r2i row needs {n} tokens (prompt {max_prompt_len} + 1, reasoning "
                         f"{reasoning_len}, image {num_image_tokens} + 2) but seq_len is {seq_len}")
    text = [layout.r2i, layout.bos, *prompt_ids, layout.eos]
    truncated = False
    if len(text) > max_prompt_len + 1:
        text, truncated = text[:max_prompt_len] + [layout.eos], True
    k = max_prompt_len + 1 - len(text)
    reason = list(reasoning_ids)[:reasoning_len - 1] + [layout.eos]
    truncated |= len(reasoning_ids) > reasoning_len - 1
    r0 = max_prompt_len + 1
    img0 = r0 + reasoning_len + 1
    tokens = np.full((seq_len,), layout.eos, np.int32)
    tokens[:r0] = [layout.ipad] * k + text
    tokens[r0:r0 + len(reason)] = reason
    tokens[img0 - 1] = layout.soi
    tokens[img0:img0 + num_image_tokens] = layout.mask
    tokens[n - 1] = layout.eoi
    key = np.zeros((seq_len,), bool)
    key[k:n] = True
    target = np.zeros((seq_len,), bool)
    target[r0:r0 + reasoning_len] = True
    target[img0:img0 + num_image_tokens] = True
    return dict(tokens=tokens, key_mask=key, target_mask=target, image_start=np.int32(img0),
                reasoning_start=np.int32(r0), truncated=truncated)


def r2i_prompt_row(prompt_ids, layout, max_prompt_len: int, reasoning_len: int,
                   num_image_tokens: int) -> dict:
    """An inference row: the reasoning span and the image span all masks."""
    row = r2i_row(prompt_ids, [], layout, max_prompt_len, reasoning_len, num_image_tokens)
    r0 = int(row["reasoning_start"])
    row["tokens"][r0:r0 + reasoning_len] = layout.mask
    return row


class R2IRows:
    """Batches of r2i rows from ShapesWorld knowledge scenes (train split), images coded with
    `codes_fn`. State: the number of rows drawn (deterministic from `seed`)."""

    def __init__(self, layout, encode, codes_fn, *, batch_size: int, seq_len: int,
                 max_prompt_len: int, num_image_tokens: int, image_size: int, seed: int = 0,
                 split: str = "train"):
        self.layout, self.encode, self.codes_fn = layout, encode, codes_fn
        self.batch_size, self.seq_len = batch_size, seq_len
        self.max_prompt_len, self.v, self.image_size = max_prompt_len, num_image_tokens, image_size
        self.reasoning_len = seq_len - max_prompt_len - 1 - num_image_tokens - 2
        if self.reasoning_len < 8:
            raise ValueError(f"r2i: seq_len={seq_len} leaves {self.reasoning_len} reasoning tokens "
                             f"after a {max_prompt_len}-token prompt and {num_image_tokens} image "
                             "tokens; raise seq_len or lower r2i_max_prompt_len")
        self.seed, self.split, self.drawn = seed, split, 0

    def example(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, 7, i])
        scene = knowledge.knowledge_scene(rng, self.split)
        return dict(prompt=knowledge.knowledge_prompt(scene, rng),
                    reasoning=knowledge_reasoning(scene), scene=scene)

    def __next__(self) -> dict:
        rows, imgs = [], []
        for j in range(self.batch_size):
            ex = self.example(self.drawn + j)
            rows.append(r2i_row(self.encode(ex["prompt"]), self.encode(ex["reasoning"]),
                                self.layout, self.max_prompt_len, self.reasoning_len, self.v,
                                self.seq_len))
            imgs.append(image_lib.normalize(sc.render(ex["scene"], self.image_size)))
        self.drawn += self.batch_size
        codes = np.asarray(self.codes_fn(np.stack(imgs))).reshape(self.batch_size, -1)
        tokens = np.stack([r["tokens"] for r in rows])
        for i, r in enumerate(rows):
            s = int(r["image_start"])
            tokens[i, s:s + self.v] = self.layout.image_ids(codes[i])
        return dict(tokens=tokens, key_mask=np.stack([r["key_mask"] for r in rows]),
                    target_mask=np.stack([r["target_mask"] for r in rows]))

    def get_state(self):
        return {"drawn": self.drawn}

    def set_state(self, state):
        self.drawn = int(state["drawn"])


class WithR2I:
    """A batch source whose batches gain task `task` (r2i rows); tasks kept in `order`."""

    def __init__(self, base, r2i: R2IRows, task: str, order):
        self.base, self.r2i, self.task, self.order = base, r2i, task, list(order)

    def __iter__(self):
        return self

    def __next__(self):
        b = next(self.base)
        b[self.task] = next(self.r2i)
        return {t: b[t] for t in self.order if t in b}

    def get_state(self):
        return {"base": self.base.get_state(), "r2i": self.r2i.get_state()}

    def set_state(self, state):
        self.base.set_state(state["base"])
        self.r2i.set_state(state["r2i"])

    def stats(self):
        return getattr(self.base, "stats", lambda: {})()
