"""ShapesWorld scenes: the vocabulary, a seeded scene generator and an anti-aliased renderer.

A scene is 1-4 objects, each a (shape, color, size) in its own cell of a 3x3 grid, drawn centred in
its cell on a dark background. Rendering is pure numpy (4x supersampling), so the same scene gives
the same pixels everywhere.

Splits: `train` scenes never contain a HELD_OUT_COMBOS (color, shape) pair; every `test` scene
contains at least one, so test accuracy measures compositional generalization. `all` draws every
(color, shape) pair alike: for perception components (the image tokenizer) that, like a real
tokenizer trained on generic images, should not depend on which pairs the model is taught.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230), "yellow": (235, 215, 50),
    "purple": (150, 60, 200), "cyan": (40, 205, 215), "orange": (245, 140, 30),
    "white": (235, 235, 235),
}
COLOR_NAMES = tuple(COLORS)
SIZES = {"small": 0.5, "large": 0.85}  # side (or diameter) as a fraction of the cell side
SIZE_NAMES = tuple(SIZES)
# the words a caption names an object's look with (colors, shapes, sizes)
ATTRIBUTE_WORDS = COLOR_NAMES + SHAPES + SIZE_NAMES
BACKGROUND = (24, 24, 24)
GRID = 3
ROW_NAMES = ("top", "middle", "bottom")
COL_NAMES = ("left", "center", "right")
MAX_OBJECTS = 4

# (color, shape) pairs that only the test split shows.
HELD_OUT_COMBOS = frozenset({("red", "triangle"), ("blue", "circle"), ("purple", "triangle"),
                             ("cyan", "circle")})


@dataclasses.dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    row: int
    col: int
    item: str = ""  # the world-knowledge item this object depicts ("" for plain objects)

    @property
    def cell(self) -> int:
        return self.row * GRID + self.col


@dataclasses.dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]

    def to_json(self) -> str:
        return json.dumps([dataclasses.asdict(o) for o in self.objects], sort_keys=True)

    @classmethod
    def from_json(cls, s: str | bytes) -> "Scene":
        return cls(tuple(Obj(**d) for d in json.loads(s)))

    def key(self) -> tuple:
        """Order-free identity (shape, color, size, cell) used to compare scenes."""
        return tuple(sorted((o.shape, o.color, o.size, o.cell) for o in self.objects))


def position_name(row: int, col: int) -> str:
    if row == 1 and col == 1:
        return "center"
    if row == 1:
        return f"middle {COL_NAMES[col]}"
    if col == 1:
        return "top" if row == 0 else "bottom"
    return f"{ROW_NAMES[row]} {COL_NAMES[col]}"


# every cell's name -> (row, col), and the words cell names are made of ("top", "center", ...)
CELL_NAMES = {position_name(r, c): (r, c) for r in range(GRID) for c in range(GRID)}
CELL_WORDS = tuple(sorted({w for name in CELL_NAMES for w in name.split()}))


def is_held_out(color: str, shape: str) -> bool:
    return (color, shape) in HELD_OUT_COMBOS


def max_objects_of(data_cfg) -> int:
    """`config.data.shapesworld.max_objects` (MAX_OBJECTS when absent)."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    return check_max_objects(sw.get("max_objects", MAX_OBJECTS))


def check_max_objects(max_objects: int) -> int:
    m = int(max_objects)
    if not 1 <= m <= MAX_OBJECTS:
        raise ValueError(f"ShapesWorld max_objects={max_objects} outside [1, {MAX_OBJECTS}]")
    return m


def random_scene(rng: np.random.Generator, split: str = "train",
                 num_objects: int | None = None, max_objects: int = MAX_OBJECTS) -> Scene:
    """A scene of 1..max_objects objects (or exactly `num_objects`) in distinct cells; train
    avoids, test includes, a held-out combo; all draws from every combo."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"random_scene: split must be 'train', 'test' or 'all', got {split!r}")
    n = int(num_objects or rng.integers(1, check_max_objects(max_objects) + 1))
    cells = rng.choice(GRID * GRID, size=n, replace=False)
    combos = [(c, s) for c in COLOR_NAMES for s in SHAPES]
    allowed = combos if split == "all" else [cs for cs in combos if not is_held_out(*cs)]
    held = sorted(HELD_OUT_COMBOS)
    objs = []
    forced = int(rng.integers(n)) if split == "test" else -1
    for i, cell in enumerate(cells):
        pool = held if i == forced else allowed
        color, shape = pool[int(rng.integers(len(pool)))]
        size = SIZE_NAMES[int(rng.integers(len(SIZE_NAMES)))]
        objs.append(Obj(shape, color, size, int(cell) // GRID, int(cell) % GRID))
    return Scene(tuple(objs))


# ---------------------------------------------------------------------------- rendering
def cell_bounds(image_size: int) -> list[int]:
    """Pixel edges of the grid cells: GRID + 1 integers."""
    return [round(i * image_size / GRID) for i in range(GRID + 1)]


def cell_alpha(shape: str, size: str, row: int, col: int, image_size: int,
               supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage of one shape centred in cell (row, col): float [h, w] over the
    cell's pixel window `cell_bounds(image_size)`."""
    edges = cell_bounds(image_size)
    cell_px = image_size / GRID
    s = supersample
    ys = (np.arange(edges[row] * s, edges[row + 1] * s) + 0.5) / s - (row + 0.5) * cell_px
    xs = (np.arange(edges[col] * s, edges[col + 1] * s) + 0.5) / s - (col + 0.5) * cell_px
    dy, dx = np.meshgrid(ys, xs, indexing="ij")
    h = SIZES[size] * cell_px / 2.0
    if shape == "circle":
        inside = dx * dx + dy * dy <= h * h
    elif shape == "square":
        inside = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    elif shape == "triangle":  # apex up, base = height = 2h
        inside = (dy <= h) & (np.abs(dx) <= (dy + h) / 2.0)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    hh, ww = inside.shape[0] // s, inside.shape[1] // s
    return inside.reshape(hh, s, ww, s).mean(axis=(1, 3))


def render(scene: Scene, image_size: int = 64) -> np.ndarray:
    """uint8 [S, S, 3] image of the scene."""
    if not 16 <= image_size <= 1024:
        raise ValueError(f"render: image_size {image_size} outside [16, 1024]")
    img = np.empty((image_size, image_size, 3), np.float32)
    img[:] = BACKGROUND
    e = cell_bounds(image_size)
    for o in scene.objects:
        a = cell_alpha(o.shape, o.size, o.row, o.col, image_size)[..., None]
        col = np.asarray(COLORS[o.color], np.float32)
        win = img[e[o.row]:e[o.row + 1], e[o.col]:e[o.col + 1]]
        win[:] = win * (1 - a) + col * a
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
