"""Readers shared by the eval scorers: JSON lines with errors that name file, line and field."""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence


class EvalDataError(ValueError):
    """A malformed eval file: the message names the file, line and field."""


def read_jsonl(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict]:
    """Records of a .jsonl file (blank lines skipped); each must be an object holding `required`."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalDataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise EvalDataError(f"{path}:{lineno}: expected a JSON object, got "
                                    f"{type(rec).__name__}")
            check_fields(rec, required, f"{path}:{lineno}")
            out.append(rec)
    return out


def check_fields(rec: dict, required: Iterable[str], where: str):
    missing = [k for k in required if k not in rec]
    if missing:
        raise EvalDataError(f"{where}: missing field(s) {missing} (has {sorted(rec)})")


def mean(xs) -> float:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else float("nan")
