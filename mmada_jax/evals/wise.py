"""WISE-style world-knowledge scoring.

Two scores:
  * `score_wise_attributes`: a knowledge prompt ("the fruit Newton saw fall") names the attributes
    a correct image must show (required = ["apple", "red"] or object specs {class/shape, color,
    size}); a prompt counts as correct when every required attribute appears among the image's
    objects (detections or `ParsedObject`s). Reports the fraction correct, the mean fraction of
    attributes present, and both per category (cultural, time, space, biology, physics, chemistry).
  * `wiscore`: WISE's judge-based score for one image from consistency, realism and aesthetic
    quality judged on 0..2: (0.7 c + 0.2 r + 0.1 a) / 2, in [0, 1].

Prompt file: JSON lines with `prompt_id`, `prompt`, `required` and optional `category`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Sequence

from mmada_jax.evals.io import EvalDataError, mean, read_jsonl
from mmada_jax.evals.scene_types import ParsedObject

_FIELDS = ("class", "color", "size")


def _as_dict(obj) -> dict:
    if isinstance(obj, ParsedObject):
        return obj.to_detection()
    if isinstance(obj, dict):
        d = dict(obj)
        if "class" not in d and "shape" in d:
            d["class"] = d["shape"]
        return d
    raise TypeError(f"WISE: objects must be dicts or ParsedObject, got {type(obj).__name__}")


def attribute_present(req: Any, objects: Sequence[dict]) -> bool:
    """A string matches any object's class, color or size (case-insensitive); a dict matches
    when one object agrees on every given field (and at least `count` objects do)."""
    if isinstance(req, str):
        r = req.strip().lower()
        return any(str(o.get(f) or "").lower() == r for o in objects for f in _FIELDS)
    spec = _as_dict(req)
    keys = [f for f in _FIELDS if f in spec]
    if not keys:
        raise ValueError(f"WISE: requirement {req!r} names none of {_FIELDS} (or 'shape')")
    n = sum(all(str(o.get(f) or "").lower() == str(spec[f]).lower() for f in keys) for o in objects)
    return n >= int(spec.get("count", 1))


def score_wise_attributes(records: Sequence[dict], objects: Sequence[Sequence[Any]]) -> dict:
    """{'accuracy', 'attribute_recall', 'per_category': {cat: {accuracy, attribute_recall, n}},
    'n', 'correct': [bool]}; records[i] holds `required`, objects[i] the image's objects."""
    if len(records) != len(objects):
        raise ValueError(f"score_wise_attributes: {len(records)} records vs {len(objects)} images")
    correct, recall = [], []
    for rec, objs in zip(records, objects):
        objs = [_as_dict(o) for o in objs]
        hits = [attribute_present(r, objs) for r in rec["required"]]
        correct.append(all(hits))
        recall.append(mean(hits) if hits else 1.0)
    by = defaultdict(list)
    for i, rec in enumerate(records):
        by[rec.get("category", "all")].append(i)
    per = {c: dict(accuracy=mean(correct[i] for i in ix),
                   attribute_recall=mean(recall[i] for i in ix), n=len(ix))
           for c, ix in sorted(by.items())}
    return dict(accuracy=mean(correct), attribute_recall=mean(recall), per_category=per,
                n=len(correct), correct=correct)


def wiscore(consistency: float, realism: float, aesthetic: float) -> float:
    """WISE's WiScore of one image from judge scores on 0..2."""
    for name, v in (("consistency", consistency), ("realism", realism), ("aesthetic", aesthetic)):
        if not 0 <= v <= 2:
            raise ValueError(f"wiscore: {name}={v} outside the judge scale [0, 2]")
    return (0.7 * consistency + 0.2 * realism + 0.1 * aesthetic) / 2.0


def read_wise(path: str | os.PathLike) -> list[dict]:
    recs = read_jsonl(path, required=("prompt_id", "prompt", "required"))
    for i, r in enumerate(recs, 1):
        if not isinstance(r["required"], list):
            raise EvalDataError(f"{path}: record {i}, field 'required': expected a list")
    return recs
