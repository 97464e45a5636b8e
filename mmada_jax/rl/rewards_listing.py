"""'listing' reward: what a VQA answer's `<think>` block says it sees is in the image.

ShapesWorld's worked VQA answers describe objects by cell before answering ("I see a small blue
triangle in the top right.", "The colors: red in the center and blue in the bottom.", "The
shape in the bottom right is blue.", "The red shapes: a small circle in the top."). Each clause
that names a cell ("... in the <cell>") is a claim: an object sits in that cell with every
size, color and shape word the clause puts before it, and the color of a "The <color> shapes:"
heading ("shapes" and a bare "shape" claim only that an object is there). A completion earns
`value` x the share of its claims that the scene (`metadata`, a `Scene` JSON string) makes true;
nothing for a badly formatted completion or one without claims.

Why: the final answer's correctness rewards a right guess behind a wrong listing as much as a
right reading; the CPU demo's model answers from a listing it often got wrong (UniGRPO seeds
from demo v26's SFT checkpoint lowered held-out VQA in 3 of 5). This reward scores the reading
itself, as 'equations' scores the steps of a word problem.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Sequence

import numpy as np

from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.rl.rewards import _THINK_RE, _check_lengths, register_reward, well_formatted


@functools.lru_cache(maxsize=None)
def _vocabulary() -> tuple[re.Pattern, dict[str, str]]:
    """(regex of "in the <cell>", longest cell name first; look word -> 'size'/'color'/'shape')."""
    alts = "|".join(sorted(map(re.escape, sc.CELL_NAMES), key=len, reverse=True))
    words = {**{w: "size" for w in sc.SIZE_NAMES}, **{w: "color" for w in sc.COLOR_NAMES},
             **{w: "shape" for w in sc.SHAPES}, **{w + "s": "shape" for w in sc.SHAPES}}
    return re.compile(rf"\bin the ({alts})\b"), words


def claims(think: str) -> list[tuple[dict, tuple[int, int]]]:
    """Every (attributes, (row, col)) the text claims, one per clause naming a cell;
    attributes maps 'size' / 'color' / 'shape' to the word the clause gives (any subset). A
    sentence headed "The <color> shapes:" ('color_first' position answers) gives each of its
    clauses that color."""
    cell_re, words = _vocabulary()
    out = []
    for sentence in think.split("."):
        head = re.match(r"\s*the (\w+) shapes:", sentence.lower())
        color = head.group(1) if head and words.get(head.group(1)) == "color" else None
        for clause in re.split(r"[,:;]|\band\b", sentence):
            m = cell_re.search(clause)
            if not m:
                continue
            attrs = {} if color is None else {"color": color}
            for w in re.findall(r"[a-z]+", clause[:m.start()].lower()):
                kind = words.get(w)
                if kind is not None:
                    attrs[kind] = w[:-1] if kind == "shape" and w.endswith("s") else w
            out.append((attrs, sc.CELL_NAMES[m.group(1)]))
    return out


def claim_precision(completion: str, scene) -> float | None:
    """Share of the completion's claims that hold in `scene`; None when it makes none or is
    badly formatted."""
    if not well_formatted(completion):
        return None
    cs = claims(_THINK_RE.fullmatch(completion).group(1))
    if not cs:
        return None
    at = {(o.row, o.col): o for o in scene.objects}
    ok = sum(1 for attrs, cell in cs if cell in at
             and all(getattr(at[cell], k) == v for k, v in attrs.items()))
    return ok / len(cs)


@register_reward("listing")
@dataclasses.dataclass(frozen=True)
class ListingReward:
    """`value` x `claim_precision` of each completion against its scene (`metadata`)."""

    value: float = 1.0

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], *,
                 metadata: Sequence[Any] = None, **_):
        _check_lengths("listing", len(completions), metadata=metadata)
        out = np.zeros(len(completions), np.float32)
        parsed = {}  # a group's G completions share one scene string: parse it once
        for i, (c, md) in enumerate(zip(completions, metadata)):
            if isinstance(md, (str, bytes)):
                if md not in parsed:
                    parsed[md] = sc.Scene.from_json(md)
                md = parsed[md]
            p = claim_precision(c, md)
            out[i] = 0.0 if p is None else self.value * p
        return out
