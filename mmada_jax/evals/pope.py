"""POPE: yes/no extraction and the binary metrics (positive class = 'yes').

Reference file: JSON lines with `question_id`, `text` (the question), `label` ('yes'/'no'),
optional `image` and `category` (random / popular / adversarial).
Answer extraction follows the official POPE script: keep the first sentence (text before the
first '.'), drop commas, split on spaces; 'No', 'no' or 'not' among the words -> 'no', anything
else -> 'yes'. `strict=True` instead returns None unless the reply starts with yes/no.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Sequence

from mmada_jax.evals import answers
from mmada_jax.evals.io import EvalDataError, read_jsonl


def extract_yes_no(text: str, strict: bool = False) -> str | None:
    t = answers.after_think(text or "").strip()
    if strict:
        m = re.match(r"^\W*(yes|no)\b", t, re.IGNORECASE)
        return m.group(1).lower() if m else None
    words = t.split(".")[0].replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def read_pope(path: str | os.PathLike) -> list[dict]:
    recs = read_jsonl(path, required=("question_id", "text", "label"))
    for i, r in enumerate(recs, 1):
        lab = str(r["label"]).strip().lower()
        if lab not in ("yes", "no"):
            raise EvalDataError(f"{path}: record {i}, field 'label': expected yes/no, "
                                f"got {r['label']!r}")
        r["label"] = lab
    return recs


def pope_metrics(preds: Sequence[str | None], labels: Sequence[str]) -> dict:
    """accuracy, precision, recall, f1, yes_ratio, n (an unparsed prediction counts as wrong and
    as neither yes nor no)."""
    tp = sum(p == "yes" and l == "yes" for p, l in zip(preds, labels))
    fp = sum(p == "yes" and l == "no" for p, l in zip(preds, labels))
    tn = sum(p == "no" and l == "no" for p, l in zip(preds, labels))
    fn = sum(p != "yes" and l == "yes" for p, l in zip(preds, labels))
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return dict(accuracy=(tp + tn) / n if n else float("nan"), precision=precision, recall=recall,
                f1=f1, yes_ratio=sum(p == "yes" for p in preds) / n if n else float("nan"), n=n)


def score_pope(responses: Sequence[str], records: Sequence[dict], strict: bool = False) -> dict:
    """Overall metrics plus 'per_category' ({category: metrics}) and 'predictions'."""
    if len(responses) != len(records):
        raise ValueError(f"score_pope: {len(responses)} responses vs {len(records)} records")
    preds = [extract_yes_no(r, strict) for r in responses]
    labels = [r["label"] for r in records]
    out = pope_metrics(preds, labels)
    groups = defaultdict(list)
    for i, r in enumerate(records):
        groups[r.get("category", "all")].append(i)
    out["per_category"] = {c: pope_metrics([preds[i] for i in ix], [labels[i] for i in ix])
                           for c, ix in sorted(groups.items())}
    out["predictions"] = preds
    return out
