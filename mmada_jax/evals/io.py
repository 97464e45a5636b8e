"""Readers shared by the eval scorers: JSON lines with errors that name file, line and field."""

from __future__ import annotations

import gzip
import json
import os
from typing import IO, Iterable, Sequence


class EvalDataError(ValueError):
    """A malformed eval file: the message names the file, line and field."""


def resolve_text_path(path: str | os.PathLike) -> str:
    """`path`, or `path`.gz when only the compressed copy exists (kept results are gzipped)."""
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        return path + ".gz"
    return path


def open_text(path: str | os.PathLike) -> IO[str]:
    """Opens a UTF-8 text file for reading, gzip-compressed or not (see resolve_text_path).

    Raises FileNotFoundError naming `path` when neither it nor `path`.gz exists."""
    real = resolve_text_path(path)
    if real.endswith(".gz"):
        return gzip.open(real, "rt", encoding="utf-8")
    return open(real, encoding="utf-8")


def read_jsonl(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict]:
    """Records of a .jsonl file (blank lines skipped; `path`.gz is read when only it exists);
    each must be an object holding `required`."""
    out = []
    path = resolve_text_path(path)          # errors name the file actually read
    with open_text(path) as f:
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
