"""The parsed-scene record shared by scene parsers (e.g. ShapesWorld's) and the scene scorers.

A parser turns an image into a list of `ParsedObject`s; `evals.scene_geneval` and `evals.wise`
score those lists against prompt metadata, with no knowledge of how the image was parsed.
Grid coordinates: row 0 is the top row, col 0 the left column (so 'above' = smaller row).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any


@dataclasses.dataclass(frozen=True)
class ParsedObject:
    """One object of a parsed scene.

    shape: class name ('square', 'circle', ...); color: color name ('red', ...);
    size: size name ('small', 'large', ...) or None when the parser does not report it;
    row, col: grid cell (0-based, row 0 at the top).
    """

    shape: str
    color: str | None
    size: str | None
    row: int
    col: int

    def __post_init__(self):
        if not isinstance(self.shape, str) or not self.shape:
            raise ValueError(f"ParsedObject: shape must be a non-empty string, got {self.shape!r}")
        for f in ("row", "col"):
            v = getattr(self, f)
            try:
                i = operator.index(v)
            except TypeError:
                i = None
            if i is None or isinstance(v, bool) or i < 0:
                raise ValueError(f"ParsedObject: {f} must be an int grid index >= 0, got {v!r}")
            object.__setattr__(self, f, i)

    def to_detection(self) -> dict[str, Any]:
        """GenEval-style detection: class = shape, bbox = the unit grid cell [col, row, col+1,
        row+1], plus color and size."""
        return {"class": self.shape, "color": self.color, "size": self.size,
                "bbox": [self.col, self.row, self.col + 1, self.row + 1]}

    @classmethod
    def from_dict(cls, d: dict) -> "ParsedObject":
        missing = [k for k in ("shape", "row", "col") if k not in d]
        if missing:
            raise ValueError(f"ParsedObject.from_dict: missing field(s) {missing} in {d}")
        return cls(d["shape"], d.get("color"), d.get("size"), int(d["row"]), int(d["col"]))
