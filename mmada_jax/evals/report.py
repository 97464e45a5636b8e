"""JSON report writer for eval results (numpy scalars/arrays converted, written atomically)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from typing import Any, Mapping

import numpy as np


def to_jsonable(x: Any) -> Any:
    """Dicts/lists/tuples recursively; numpy scalars and arrays -> Python; NaN/inf -> None;
    dataclasses -> dicts."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_jsonable(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.generic):
        return to_jsonable(x.item())
    if hasattr(x, "__array__") and hasattr(x, "shape"):  # jax arrays
        return to_jsonable(np.asarray(x))
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"write_report: cannot serialize {type(x).__name__}: {x!r}")


def write_report(path: str | os.PathLike, results: Mapping[str, Any], *,
                 config: Mapping[str, Any] | None = None, drop_per_sample: bool = False,
                 **meta) -> dict:
    """Write {'results', 'config', 'meta': {'written_at', ...}} as indented JSON; returns it.

    `drop_per_sample` removes per-sample lists (keys 'correct', 'sound', 'predictions',
    'scores', 'reasons') from every benchmark's dict, for a compact summary.
    """
    res = dict(results)
    if drop_per_sample:
        per = {"correct", "sound", "predictions", "scores", "reasons"}
        res = {k: ({kk: vv for kk, vv in v.items() if kk not in per}
                   if isinstance(v, Mapping) else v) for k, v in res.items()}
    doc = to_jsonable(dict(results=res, config=config or {},
                           meta=dict(written_at=datetime.datetime.now(datetime.timezone.utc)
                                     .isoformat(timespec="seconds"), **meta)))
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return doc


def read_report(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
