"""The ShapesWorld fact base: everyday things and their color and shape.

Facts appear as plain sentences in the text corpus (all items, both splits); t2i prompts name the
item only ("a small tomato in the top left"), so drawing them needs the fact. Prompts about
HELD_OUT_ITEMS appear only in the test split: a model draws them right only by using the facts it
read as text (WISE-style).
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import scenes as sc

# item -> (color, shape, plural)
FACTS = {
    "sun": ("yellow", "circle", "suns"),
    "tomato": ("red", "circle", "tomatoes"),
    "lime": ("green", "circle", "limes"),
    "grape": ("purple", "circle", "grapes"),
    "orange": ("orange", "circle", "oranges"),
    "snowball": ("white", "circle", "snowballs"),
    "sticky note": ("yellow", "square", "sticky notes"),
    "sugar cube": ("white", "square", "sugar cubes"),
    "brick": ("red", "square", "bricks"),
    "pool tile": ("cyan", "square", "pool tiles"),
    "gift box": ("purple", "square", "gift boxes"),
    "pine tree": ("green", "triangle", "pine trees"),
    "traffic cone": ("orange", "triangle", "traffic cones"),
    "slice of cheese": ("yellow", "triangle", "slices of cheese"),
    "sailboat sail": ("white", "triangle", "sailboat sails"),
    "shark fin": ("blue", "triangle", "shark fins"),
    "emerald tile": ("green", "square", "emerald tiles"),
}
ITEMS = tuple(FACTS)
HELD_OUT_ITEMS = frozenset({"lime", "brick", "traffic cone", "snowball"})

_SENTENCES = (
    "{A} {item} is {color} and shaped like a {shape}.",
    "{A} {item} is {color}. It looks like a {shape}.",
    "{Plural} are {color} {shape}s.",
    "If you draw {a} {item}, draw a {color} {shape}.",
    "The color of {a} {item} is {color}, and its shape is a {shape}.",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fact_sentence(item: str, rng: np.random.Generator) -> str:
    """One plain-text statement of the fact about `item`, in a random template."""
    color, shape, plural = FACTS[item]
    t = _SENTENCES[int(rng.integers(len(_SENTENCES)))]
    a = _article(item)
    return t.format(A=a.capitalize(), a=a, item=item, color=color, shape=shape,
                    Plural=plural.capitalize())


def items_for_split(split: str) -> list[str]:
    if split == "train":
        return [i for i in ITEMS if i not in HELD_OUT_ITEMS]
    if split == "test":
        return sorted(HELD_OUT_ITEMS)
    raise ValueError(f"knowledge: split must be 'train' or 'test', got {split!r}")


def knowledge_scene(rng: np.random.Generator, split: str = "train",
                    max_objects: int = 2) -> sc.Scene:
    """1-2 objects (at most `max_objects`), each a fact item drawn with the item's color and
    shape."""
    items = items_for_split(split)
    n = int(rng.integers(1, min(2, sc.check_max_objects(max_objects)) + 1))
    cells = rng.choice(sc.GRID * sc.GRID, size=n, replace=False)
    objs = []
    for cell in cells:
        item = items[int(rng.integers(len(items)))]
        color, shape, _ = FACTS[item]
        size = sc.SIZE_NAMES[int(rng.integers(len(sc.SIZE_NAMES)))]
        objs.append(sc.Obj(shape, color, size, int(cell) // sc.GRID, int(cell) % sc.GRID, item))
    return sc.Scene(tuple(objs))


def knowledge_prompt(scene: sc.Scene, rng: np.random.Generator) -> str:
    """A t2i prompt naming the items (never their color or shape)."""
    parts = []
    for o in scene.objects:
        pos = sc.position_name(o.row, o.col)
        parts.append(f"{_article(o.size)} {o.size} {o.item} in the {pos}")
    lead = ("", "A picture of ", "Draw ", "An image showing ")[int(rng.integers(4))]
    text = " and ".join(parts)
    return (lead + text if lead else text[0].upper() + text[1:]) + "."
