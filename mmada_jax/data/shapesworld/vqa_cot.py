"""How worked VQA answers are written: one registered class per style, picked by
`config.data.shapesworld.vqa_cot` and used by `language.question`.

A style writes the first sentence of a counting answer (`count_head`), the noun its counting
sentence names (`count_noun`: "Counting the <noun>: there are 2."), a color answer
(`color_cot`), a position answer (`position_cot`: by default the inventory in cell order,
then "The <object> is in the <cell>.") and an existence answer (`exists_cot`: by default the
inventory, then the shapes of the asked color). Position and existence answers keep the
inventory in every style but 'color_first' (written without it, GPU run 2's position accuracy
was 0.93 against 0.98 and POPE 0.69 against 0.81). A style only
formats text from the scene: it draws nothing, so every style asks the same questions with the
same answers.

A new style is a file with a subclass registered by name:

    from mmada_jax.data.shapesworld.vqa_cot import FactoredCot, register_vqa_cot

    @register_vqa_cot("numbered")
    class NumberedCot(FactoredCot):
        def count_noun(self, attr, plural, singular):
            return f"{plural} one by one"

imported before the data pipeline reads the config (e.g. from the experiment file).
"""

from __future__ import annotations

from mmada_jax.data.shapesworld import scenes as sc

VQA_COTS: dict[str, "VqaCot"] = {}


def register_vqa_cot(name: str):
    """Class decorator: register an instance of the class as VQA CoT style `name`."""
    def deco(cls):
        if name in VQA_COTS:
            raise ValueError(f"vqa_cot style {name!r} already registered")
        VQA_COTS[name] = cls()
        return cls
    return deco


def get_vqa_cot(name: str) -> "VqaCot":
    if name not in VQA_COTS:
        raise ValueError(f"vqa_cot style {name!r} unknown; known {tuple(VQA_COTS)}")
    return VQA_COTS[name]


# ---------------------------------------------------------------------------------- phrases
def join_phrases(parts: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def where(o: sc.Obj) -> str:
    return f"the {sc.position_name(o.row, o.col)}"


def by_cell(objs) -> list:
    return sorted(objs, key=lambda o: o.cell)


def describe(o: sc.Obj) -> str:
    return f"a {o.size} {o.color} {o.shape} in {where(o)}"


def inventory(objs) -> str:
    """"I see a large blue circle in the center and a small red square in the top left."."""
    return "I see " + join_phrases([describe(o) for o in by_cell(objs)]) + "."


def tallied(objs, phrase, counts=None) -> list[str]:
    """phrase(o) per object in cell order; each object `counts` accepts gets a running count
    appended: ['blue in the top left (1)', 'red in the center', 'blue in the bottom right (2)']."""
    out, k = [], 0
    for o in by_cell(objs):
        if counts is not None and counts(o):
            k += 1
            out.append(f"{phrase(o)} ({k})")
        else:
            out.append(phrase(o))
    return out


def places(objs, counts=None) -> str:
    """"I see shapes in the top and the center." / "I see one shape, in the top."."""
    if len(objs) == 1 and counts is None:
        return f"I see one shape, in {where(objs[0])}."
    return "I see shapes in " + join_phrases(tallied(objs, where, counts)) + "."


def colors(objs, counts=None) -> str:
    """"The colors: blue in the top left and red in the center."."""
    return "The colors: " + join_phrases(
        tallied(objs, lambda o: f"{o.color} in {where(o)}", counts)) + "."


def shapes(objs, counts=None) -> str:
    """"The shapes: a circle in the top left and a square in the center."."""
    return "The shapes: " + join_phrases(
        tallied(objs, lambda o: f"a {o.shape} in {where(o)}", counts)) + "."


def matching_places(objs, match, plural: str, singular: str) -> str:
    """Where the objects `match` accepts are, in cell order: "I see blue shapes in the top left
    and the center." / "I see one circle, in the top." / "I see no circles."."""
    sel = [o for o in by_cell(objs) if match(o)]
    if not sel:
        return f"I see no {plural}."
    if len(sel) == 1:
        return f"I see one {singular}, in {where(sel[0])}."
    return f"I see {plural} in " + join_phrases([where(o) for o in sel]) + "."


_LISTING = {"all": places, "color": colors, "shape": shapes}


# ----------------------------------------------------------------------------------- styles
class VqaCot:
    """Base style. `attr` is what a count counts: 'all' ("How many shapes"), 'color' ("How
    many blue shapes") or 'shape' ("How many circles"); `match(o)` says whether object o is
    counted; `plural` / `singular` name it ("blue shapes" / "blue shape", "circles" /
    "circle")."""

    def count_head(self, objs, attr: str, match, plural: str, singular: str) -> str:
        raise NotImplementedError

    def count_noun(self, attr: str, plural: str, singular: str) -> str:
        return plural

    def color_cot(self, objs, o: sc.Obj) -> str:
        raise NotImplementedError

    def position_cot(self, objs, o: sc.Obj) -> str:
        """"Where is <o>?": the inventory in cell order, then the conclusion."""
        return f"{inventory(objs)} {conclusion(o)}"

    def exists_cot(self, objs, color: str, shape: str, yes: bool) -> str:
        """"Is there a <color> <shape>?": the inventory, then the shapes of that color (as
        counting narrows down), then the verdict."""
        return f"{inventory(objs)} {narrowed(objs, color, shape, yes)}"


def narrowed(objs, color: str, shape: str, yes: bool) -> str:
    """"The red shapes: a small circle. None of them is a square, so no."."""
    return (f"{same_color(objs, color, cells=False)} "
            + (f"One of them is a {shape}, so yes." if yes else
               f"None of them is a {shape}, so no."))


def conclusion(o: sc.Obj) -> str:
    return f"The {o.size} {o.color} {o.shape} is in the {sc.position_name(o.row, o.col)}."


@register_vqa_cot("inventory")
class InventoryCot(VqaCot):
    """Every worked answer starts by naming each object's size, color and shape."""

    def count_head(self, objs, attr, match, plural, singular):
        return inventory(objs)

    def color_cot(self, objs, o):
        return (f"{inventory(objs)} The shape in the {sc.position_name(o.row, o.col)} is a "
                f"{o.size} {o.color} {o.shape}, so it is {o.color}.")


@register_vqa_cot("factored")
class FactoredCot(VqaCot):
    """Counting and color answers list only the attribute asked about (positions, colors or
    shapes per cell), so for a scene with a color/shape pair never seen in training (the test
    split) the model does not have to write that pair (GPU run: color 0.84 -> 0.95)."""

    def count_head(self, objs, attr, match, plural, singular):
        return _LISTING[attr](objs)

    def color_cot(self, objs, o):
        return f"{colors(objs)} The shape in the {sc.position_name(o.row, o.col)} is {o.color}."


@register_vqa_cot("counted")
class CountedCot(FactoredCot):
    """Factored, and a counting listing keeps a running count ("The colors: blue in the top
    left (1), red in the center and blue in the bottom right (2). Counting the blue shapes:
    there are 2."). Measured worse on the GPU (counting 0.87 -> 0.77: the marks get left out)."""

    def count_head(self, objs, attr, match, plural, singular):
        return _LISTING[attr](objs, match)


@register_vqa_cot("matched")
class MatchedCot(FactoredCot):
    """Factored, and a shape count's counting sentence names the shape in its listing's own
    singular word ("The shapes: a circle in the top. Counting the circle shapes: there is 1."):
    "circle" and "circles" are unrelated SentencePiece tokens. No better on GPU run 9 (shape
    counts 0.64): the mismatch is not what makes shape counts fail."""

    def count_noun(self, attr, plural, singular):
        return f"{singular} shapes" if attr == "shape" else plural


@register_vqa_cot("filtered")
class FilteredCot(FactoredCot):
    """Factored, and a color or shape count lists only the shapes it counts, in the form "how
    many shapes" uses ("I see circles in the top left and the center. Counting the circles:
    there are 2." / "I see no circles. ..."), so the count is the length of the listing.
    Counting every listed entry is right ~1.0 of the time on the GPU, counting the entries
    that match 0.3-0.9; this leaves the matching to the image (listings 86-97% right).
    Measured worse (GPU run 11, BENCHMARKS.md): VQA 0.80, counting 0.70, shape counts of zero
    answered with invented shapes, and position answers (whose CoT it leaves alone) 0.77."""

    def count_head(self, objs, attr, match, plural, singular):
        if attr == "all":
            return places(objs)
        return matching_places(objs, match, plural, singular)


@register_vqa_cot("asked_last")
class AskedLastCot(FactoredCot):
    """Factored, and a position answer's inventory names the asked object last ("I see a small
    red square in the top left, a small blue triangle in the top right and a large white square
    in the bottom left. The large white square is in the bottom left.", whatever the cells).

    GPU runs whose position accuracy collapsed (0.52-0.82 against 0.94-0.98) named the asked
    object in their listing (run 19: 81% of position answers) and then copied the *last*
    listed object's cell into the conclusion (53%; the answer followed the listing in 44%):
    finding the asked object in its own listing is what the model fails to learn in some runs.
    With the asked object listed last, its cell is the one the conclusion repeats, and the
    listing still names every object."""

    def position_cot(self, objs, o):
        others = [x for x in by_cell(objs) if x is not o]
        return "I see " + join_phrases([describe(x) for x in others + [o]]) + f". {conclusion(o)}"


def same_color(objs, color: str, cells: bool = True) -> str:
    """"The purple shapes: a small circle in the middle right and a large square in the top."
    (cell order; every object of `color`, named without it; `cells=False`: sizes and shapes
    only, "The purple shapes: a small circle and a large square.")."""
    sel = [f"a {x.size} {x.shape}" + (f" in {where(x)}" if cells else "")
           for x in by_cell(objs) if x.color == color]
    return f"The {color} shapes: {join_phrases(sel) if sel else 'none'}."


@register_vqa_cot("color_first")
class ColorFirstCot(FactoredCot):
    """Factored, and position and existence answers start from the shapes of the asked color, named
    by size and shape, not from the inventory: no answer writes a color/shape pair. Position:
    "The purple shapes: a small circle in the middle right and a large square in the top. The
    small circle is in the middle right."; existence: "The red shapes: a small circle. None of
    them is a square, so no.".

    Every test scene holds a color/shape pair that no training text contains. A full inventory
    has to write that pair, and so does a conclusion naming a held-out object asked about. GPU
    runs whose position accuracy collapsed write it in neither: they put the *asked* object's
    name in the held-out object's cell (run 20: asked about a training pair in scenes of 2-4
    objects, 30 of 74 right, 26 of them answered with the held-out object's cell) and, asked
    about the held-out pair, conclude with a pair they have seen ("Where is the small purple
    triangle?" ... "The small purple circle is in the top right."; run 19: 8 of 26 right;
    `benchmarks/count_consistency.py`). Existence questions about a held-out pair present in the
    scene are answered "yes" 18-70 of 72 times in runs 10-20, those about other present pairs
    47-56 of 56 (`count_consistency.py`, existence)."""

    def position_cot(self, objs, o):
        return (f"{same_color(objs, o.color)} The {o.size} {o.shape} is in the "
                f"{sc.position_name(o.row, o.col)}.")

    def exists_cot(self, objs, color, shape, yes):
        return narrowed(objs, color, shape, yes)
