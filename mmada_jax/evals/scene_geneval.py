"""GenEval-style scoring of parsed scenes (lists of `ParsedObject`), e.g. ShapesWorld images.

Metadata is GenEval's (see `evals.geneval`) with shapes as classes: include/exclude specs
{shape (or class), count[, color][, size][, position: [relation, earlier include index]]}.
Each object becomes a detection with its grid cell as a unit box, so relations use GenEval's rule
on cell centers (same row, one column left -> 'left of'; a diagonal neighbour is both 'left of'
and 'above'; two columns left and one row up -> only 'left of'). Without detector scores, objects
that satisfy a spec's color/size are chosen first (`select='attributes'`), so a blue square is
found next to a red one. Report: per-tag accuracy, overall = mean of tag means.
"""

from __future__ import annotations

from typing import Sequence

from mmada_jax.evals import geneval
from mmada_jax.evals.scene_types import ParsedObject

ATTRIBUTES = ("color", "size")


def _spec(s: dict) -> dict:
    s = dict(s)
    if "class" not in s:
        if "shape" not in s:
            raise ValueError(f"scene spec needs 'shape' (or 'class'): {s}")
        s["class"] = s.pop("shape")
    s.setdefault("count", 1)
    return s


def normalize_metadata(md: dict) -> dict:
    """Shapes -> classes, count defaults to 1."""
    out = dict(md)
    for f in ("include", "exclude"):
        if f in md:
            out[f] = [_spec(s) for s in md[f]]
    return out


def evaluate_scene(metadata: dict, objects: Sequence[ParsedObject]) -> tuple[bool, list[str]]:
    """(correct, reasons) of one parsed scene under one prompt's metadata."""
    md = normalize_metadata(metadata)
    dets = [o.to_detection() for o in objects]
    return geneval.evaluate_image(md, dets, score_threshold=None, select="attributes",
                                  attributes=ATTRIBUTES)


def scene_score(objects: Sequence[ParsedObject], metadata: dict) -> float:
    """1.0 if the scene satisfies the metadata else 0.0; usable as a t2i reward judge once the
    image is parsed: `judge = lambda img, md: scene_score(parse(img), md)`."""
    return float(evaluate_scene(metadata, objects)[0])


def score_scenes(metadata: Sequence[dict], scenes: Sequence[Sequence[ParsedObject]]) -> dict:
    """Per-tag and overall accuracy over scenes (metadata[i] belongs to scenes[i])."""
    if len(metadata) != len(scenes):
        raise ValueError(f"score_scenes: {len(metadata)} metadata vs {len(scenes)} scenes")
    res = [evaluate_scene(m, s) for m, s in zip(metadata, scenes)]
    out = geneval.summarize([m.get("tag", "all") for m in metadata], [r[0] for r in res])
    out["correct"] = [r[0] for r in res]
    out["reasons"] = [r[1] for r in res]
    return out
