"""GenEval-style compositional scoring from detected objects.

Metadata (GenEval's `evaluation_metadata.jsonl`): one JSON object per prompt with `prompt`, `tag`
in TAGS and `include` (and optionally `exclude`) lists of specs {class, count[, color][, position:
[relation, index of an earlier include spec]]}; relation in 'left of', 'right of', 'above',
'below'. Detections of one image: a list of {class, bbox: [x1, y1, x2, y2] (y grows downward)
[, color][, score]}.

Rules (GenEval's `evaluate_images.py`):
  * include: the first `count` objects of the class (highest score first) must exist; with a
    color, all of those must have it; with a position, every one of them must stand in the
    relation to every object matched by the target spec (which must itself have matched);
  * exclude: fewer than `count` objects of the class (counting prompts exclude count + 1);
  * relation of A to B: offset of box centers, shrunk per axis by 0.1 * (sum of the two box sizes)
    and floored at 0; no relation if the shrunk offset vanishes; else with (dx, dy) = shrunk offset
    / |offset|: left of dx < -0.5, right of dx > 0.5, above dy < -0.5, below dy > 0.5.
  * detections below `score_threshold` (0.3; 0.9 for counting prompts, as GenEval) are dropped when
    they carry a score.
Report: per-tag accuracy and overall = mean of the tag means.

`select='attributes'` (used by the scene scorer) picks objects that satisfy the spec's attributes
first instead of by score; `attributes` lists the spec keys checked like colors (e.g. 'size').
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Sequence

import numpy as np

from mmada_jax.evals.io import EvalDataError, check_fields, mean, read_jsonl

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")
POSITION_THRESHOLD = 0.1


def relative_position(box_a, box_b, threshold: float = POSITION_THRESHOLD) -> set[str]:
    """Relations of box A relative to box B (boxes [x1, y1, x2, y2])."""
    a, b = np.asarray(box_a, np.float64)[:4], np.asarray(box_b, np.float64)[:4]
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    da, db = np.abs(a[2:] - a[:2]), np.abs(b[2:] - b[:2])
    offset = ca - cb
    revised = np.maximum(np.abs(offset) - threshold * (da + db), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rel = set()
    if dx < -0.5:
        rel.add("left of")
    if dx > 0.5:
        rel.add("right of")
    if dy < -0.5:
        rel.add("above")
    if dy > 0.5:
        rel.add("below")
    return rel


def _by_class(objects, metadata, score_threshold):
    thr = score_threshold
    if thr is not None and metadata.get("tag") == "counting":
        thr = max(thr, 0.9)
    groups = defaultdict(list)
    for o in objects:
        if thr is not None and "score" in o and o["score"] < thr:
            continue
        groups[o["class"]].append(o)
    for v in groups.values():
        v.sort(key=lambda o: -o.get("score", 0.0))  # stable: unscored keep their order
    return groups


def evaluate_image(metadata: dict, objects: Sequence[dict], *, score_threshold: float | None = 0.3,
                   select: str = "score", attributes: Sequence[str] = ("color",)
                   ) -> tuple[bool, list[str]]:
    """(correct, reasons) for one image's detections under one prompt's metadata."""
    groups = _by_class(objects, metadata, score_threshold)
    correct, reasons, matched_groups = True, [], []
    for req in metadata.get("include", []):
        cls, count = req["class"], int(req["count"])
        cands = groups.get(cls, [])
        if select == "attributes":
            ok = [o for o in cands if all(o.get(k) == req[k] for k in attributes if k in req)]
            cands = ok + [o for o in cands if o not in ok]
        found = cands[:count]
        matched = True
        if len(found) < count:
            matched = False
            reasons.append(f"expected {cls}>={count}, found {len(found)}")
        else:
            for k in attributes:
                if k in req:
                    have = [o.get(k) for o in found]
                    if have.count(req[k]) < count:
                        matched = False
                        reasons.append(f"expected {req[k]} {cls}>={count}, found "
                                       f"{have.count(req[k])} {req[k]}; and {have}")
            if "position" in req and matched:
                rel, target = req["position"]
                if matched_groups[target] is None:
                    matched = False
                    reasons.append(f"no target for {cls} to be {rel}")
                else:
                    for o in found:
                        for t in matched_groups[target]:
                            true_rels = relative_position(o["bbox"], t["bbox"])
                            if rel not in true_rels:
                                matched = False
                                reasons.append(f"expected {cls} {rel} target, found "
                                               f"{sorted(true_rels) or 'no relation'}")
                                break
                        if not matched:
                            break
        correct &= matched
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        cls, count = req["class"], int(req["count"])
        if len(groups.get(cls, [])) >= count:
            correct = False
            reasons.append(f"expected {cls}<{count}, found {len(groups.get(cls, []))}")
    return correct, reasons


def summarize(tags: Sequence[str], correct: Sequence[bool]) -> dict:
    """{'overall' (mean of tag means), 'per_tag': {tag: acc}, 'counts': {tag: n}, 'n'}."""
    by = defaultdict(list)
    for t, c in zip(tags, correct):
        by[t].append(bool(c))
    per = {t: mean(v) for t, v in sorted(by.items())}
    counts = {t: len(v) for t, v in sorted(by.items())}
    return dict(overall=mean(per.values()), per_tag=per, counts=counts, n=len(correct))


def score_geneval(metadata: Sequence[dict], detections: Sequence[Sequence[dict]], **kw) -> dict:
    """Score images (metadata[i] is image i's prompt metadata; repeat it for several images per
    prompt). Returns `summarize(...)` plus 'correct' and 'reasons' per image."""
    if len(metadata) != len(detections):
        raise ValueError(f"score_geneval: {len(metadata)} metadata vs {len(detections)} detections")
    res = [evaluate_image(m, d, **kw) for m, d in zip(metadata, detections)]
    out = summarize([m["tag"] for m in metadata], [r[0] for r in res])
    out["correct"] = [r[0] for r in res]
    out["reasons"] = [r[1] for r in res]
    return out


def validate_metadata(rec: dict, where: str, class_key: str = "class"):
    check_fields(rec, ("tag", "include"), where)
    if rec["tag"] not in TAGS:
        raise EvalDataError(f"{where}: field 'tag' must be one of {TAGS}, got {rec['tag']!r}")
    for field in ("include", "exclude"):
        for j, spec in enumerate(rec.get(field, [])):
            if class_key not in spec and "class" not in spec or "count" not in spec:
                raise EvalDataError(f"{where}: {field}[{j}] needs '{class_key}' and 'count': "
                                    f"{spec}")
            if "position" in spec:
                pos = spec["position"]
                if (field != "include" or not isinstance(pos, list) or len(pos) != 2
                        or pos[0] not in RELATIONS or not isinstance(pos[1], int)
                        or not 0 <= pos[1] < j):
                    raise EvalDataError(f"{where}: {field}[{j}] field 'position' must be "
                                        f"[relation in {RELATIONS}, index of an earlier include "
                                        f"spec], got {pos!r}")


def read_geneval_metadata(path: str | os.PathLike) -> list[dict]:
    recs = read_jsonl(path, required=("prompt", "tag", "include"))
    for i, r in enumerate(recs, 1):
        validate_metadata(r, f"{path}: record {i}")
    return recs
