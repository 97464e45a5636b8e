"""Text generated from ShapesWorld scenes: captions in varied templates, and the understanding
questions (counting, color, position, POPE-style existence, captioning) with a worked chain of
thought in the unified `<think> ... </think> answer` format.
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import scenes as sc

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def object_phrase(o: sc.Obj, rng: np.random.Generator) -> str:
    pos = sc.position_name(o.row, o.col)
    art = "an" if o.size[0] in "aeiou" else "a"
    t = _pick(rng, ("{art} {size} {color} {shape} in the {pos}",
                    "{art} {size} {color} {shape} at the {pos}",
                    "in the {pos}, {art} {size} {color} {shape}"))
    return t.format(art=art, size=o.size, color=o.color, shape=o.shape, pos=pos)


def join_phrases(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def caption(scene: sc.Scene, rng: np.random.Generator) -> str:
    """A caption that determines the image: every object's size, color, shape and cell."""
    objs = list(scene.objects)
    order = rng.permutation(len(objs))
    phrases = [object_phrase(objs[i], rng) for i in order]
    n = len(objs)
    body = join_phrases(phrases)
    noun = "shape" if n == 1 else "shapes"
    t = _pick(rng, ("{Body}.", "A picture of {body}.", "There {be} {n} {noun}: {body}.",
                    "On a dark background: {body}.", "An image with {body}."))
    return t.format(Body=body[0].upper() + body[1:], body=body, n=NUMBER_WORDS[n], noun=noun,
                    be="is" if n == 1 else "are")


def _describe(o: sc.Obj) -> str:
    return f"a {o.size} {o.color} {o.shape} in the {sc.position_name(o.row, o.col)}"


def _inventory(scene: sc.Scene) -> str:
    objs = sorted(scene.objects, key=lambda o: o.cell)
    return "I see " + join_phrases([_describe(o) for o in objs]) + "."


VQA_COT_STYLES = ("inventory", "factored", "counted", "matched", "filtered")


def vqa_cot_style(data_cfg) -> str:
    """`config.data.shapesworld.vqa_cot`: 'inventory' (every worked answer starts by naming each
    object's size, color and shape), 'factored' (counting and color answers name only the
    attribute asked about, so they never write a color/shape pair), 'counted' (factored, and
    counting answers then number the shapes that match), 'matched' (factored, and a shape
    count names its shape in the listing's own word) or 'filtered' (factored, and a color or
    shape count lists only the shapes it counts): see `question`."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    style = str(sw.get("vqa_cot", "inventory"))
    if style not in VQA_COT_STYLES:
        raise ValueError(f"config.data.shapesworld.vqa_cot={style!r}: known {VQA_COT_STYLES}")
    return style


def _where(o: sc.Obj) -> str:
    return f"the {sc.position_name(o.row, o.col)}"


def _by_cell(objs) -> list:
    return sorted(objs, key=lambda o: o.cell)


def _tallied(objs, phrase, counts) -> list[str]:
    """phrase(o) per object in cell order; each object `counts` accepts gets a running count
    appended: ['blue in the top left (1)', 'red in the center', 'blue in the bottom right (2)']."""
    out, k = [], 0
    for o in _by_cell(objs):
        if counts is not None and counts(o):
            k += 1
            out.append(f"{phrase(o)} ({k})")
        else:
            out.append(phrase(o))
    return out


def _places(objs, counts=None) -> str:
    if len(objs) == 1 and counts is None:
        return f"I see one shape, in {_where(objs[0])}."
    return "I see shapes in " + join_phrases(_tallied(objs, _where, counts)) + "."


def _colors(objs, counts=None) -> str:
    return "The colors: " + join_phrases(
        _tallied(objs, lambda o: f"{o.color} in {_where(o)}", counts)) + "."


def _shapes(objs, counts=None) -> str:
    return "The shapes: " + join_phrases(
        _tallied(objs, lambda o: f"a {o.shape} in {_where(o)}", counts)) + "."


def _matching_places(objs, match, plural: str, singular: str) -> str:
    """Where the objects `match` accepts are, in cell order: "I see blue shapes in the top left
    and the center." / "I see one circle, in the top." / "I see no circles."."""
    sel = [o for o in _by_cell(objs) if match(o)]
    if not sel:
        return f"I see no {plural}."
    if len(sel) == 1:
        return f"I see one {singular}, in {_where(sel[0])}."
    return f"I see {plural} in " + join_phrases([_where(o) for o in sel]) + "."


def question(scene: sc.Scene, rng: np.random.Generator, kind: str | None = None,
             style: str = "inventory", avoid_pairs=frozenset()) -> dict:
    """A question about the scene: {kind, question, cot, answer}. `answer` is the short final
    answer; the assistant text is `<think> {cot} </think> {answer}` (see `cot_answer`).

    style 'inventory': the CoT first names every object ("I see a large blue circle in the ...").
    style 'factored': counting and color CoTs list only the attribute asked about (positions,
    colors or shapes per cell), so for a scene with a color/shape pair never seen in training
    (the test split) the model does not have to write that pair; position and existence
    questions, which name a pair themselves, keep the inventory (on the GPU run, writing them
    without it lowered position accuracy 0.98 -> 0.93 and POPE 0.81 -> 0.69, while the factored
    color CoT raised color accuracy 0.84 -> 0.95; BENCHMARKS.md).
    style 'counted': as 'factored', and a counting CoT keeps a running count in its listing
    ("The colors: blue in the top left (1), red in the center and blue in the bottom right (2).
    Counting the blue shapes: there are 2."), so the count is the last number written. Measured
    worse on the GPU (counting 0.87 -> 0.77: the marks get left out; BENCHMARKS.md).
    style 'matched': as 'factored', and the counting sentence of a shape count names the shape
    in the singular word its listing uses ("The shapes: a circle in the top and a square in the
    center. Counting the circle shapes: there is 1."), as a color count does ("Counting the blue
    shapes"). The SentencePiece vocabulary has "circle" and "circles" as two unrelated tokens, so
    under 'factored' ("Counting the circles") the count has to match a token it never sees in
    the listing; over eight GPU runs shape counts were 0.32-0.82 right against 0.81-0.91 for
    color counts and ~1.0 for "how many shapes" (BENCHMARKS.md). Measured no better on GPU run
    9 (shape counts 0.64): the mismatch is not what makes them fail.
    style 'filtered': as 'factored', and a color or shape count lists only the shapes it counts,
    by cell, in the form "how many shapes" already uses ("I see blue shapes in the top left and
    the center. Counting the blue shapes: there are 2." / "I see no circles. Counting the
    circles: there are 0."), so the count is the length of the listing. Picking the matching
    shapes moves to the image, where listings are 86-97% right; counting every entry of a
    listing is right ~1.0 of the time on the GPU, counting the entries that match 0.3-0.9.
    The random draws are the same for every style (same questions and answers).

    avoid_pairs: (color, shape) pairs never asked about in a negative existence question. The
    training split passes `scenes.HELD_OUT_COMBOS`: those pairs are absent from every training
    scene, so asking about them there would only ever teach "no" for exactly the pairs the test
    split asks about (a GPU run's POPE recall was 0.55 with precision 0.93)."""
    if style not in VQA_COT_STYLES:
        raise ValueError(f"question: style {style!r} unknown; known {VQA_COT_STYLES}")
    factored = style in ("factored", "counted", "matched", "filtered")
    tally = style == "counted"
    kind = kind or _pick(rng, ("count", "color", "position", "exists", "caption"))
    objs = list(scene.objects)
    inv = _inventory(scene)
    if kind == "count":
        attr = _pick(rng, ("all", "color", "shape"))
        if attr == "all":
            q, match, what, listing = "How many shapes are in the image?", (lambda o: True), \
                "shapes", _places
        elif attr == "color":
            color = _pick(rng, [o.color for o in objs] + list(sc.COLOR_NAMES[:2]))
            q, match, what, listing = f"How many {color} shapes are there?", \
                (lambda o: o.color == color), f"{color} shapes", _colors
        else:
            shape = _pick(rng, sc.SHAPES)
            q, match, what, listing = f"How many {shape}s are there?", \
                (lambda o: o.shape == shape), \
                f"{shape} shapes" if style == "matched" else f"{shape}s", _shapes
        n = sum(map(match, objs))
        if style == "filtered" and attr != "all":
            singular = f"{color} shape" if attr == "color" else shape
            head = _matching_places(objs, match, what, singular)
        else:
            head = listing(objs, match if tally else None) if factored else inv
        cot = f"{head} Counting the {what}: there {'is' if n == 1 else 'are'} {n}."
        return dict(kind=kind, question=q, cot=cot, answer=str(n))
    if kind == "color":
        o = _pick(rng, objs)
        pos = sc.position_name(o.row, o.col)
        q = f"What color is the shape in the {pos}?"
        if factored:
            cot = f"{_colors(objs)} The shape in the {pos} is {o.color}."
        else:
            cot = (f"{inv} The shape in the {pos} is a {o.size} {o.color} {o.shape}, "
                   f"so it is {o.color}.")
        return dict(kind=kind, question=q, cot=cot, answer=o.color)
    if kind == "position":
        o = _pick(rng, objs)
        pos = sc.position_name(o.row, o.col)
        q = f"Where is the {o.size} {o.color} {o.shape}?"
        cot = f"{inv} The {o.size} {o.color} {o.shape} is in the {pos}."
        return dict(kind=kind, question=q, cot=cot, answer=pos)
    if kind == "exists":
        present = {(o.color, o.shape) for o in objs}
        if rng.random() < 0.5:  # positive
            color, shape = _pick(rng, sorted(present))
        else:  # negative: adversarial (shares a color or a shape with the scene) when possible
            absent = [(c, s) for c in sc.COLOR_NAMES for s in sc.SHAPES
                      if (c, s) not in present and (c, s) not in avoid_pairs]
            near = [cs for cs in absent if any(cs[0] == p[0] or cs[1] == p[1] for p in present)]
            color, shape = _pick(rng, near or absent)
        yes = (color, shape) in present
        q = f"Is there a {color} {shape} in the image?"
        # narrow down by color first (as counting does), then look for the shape among those
        same = [f"a {o.size} {o.shape}" for o in _by_cell(objs) if o.color == color]
        cot = (f"{inv} The {color} shapes: {join_phrases(same) if same else 'none'}. "
               + (f"One of them is a {shape}, so yes." if yes else
                  f"None of them is a {shape}, so no."))
        return dict(kind=kind, question=q, cot=cot, answer="yes" if yes else "no")
    if kind == "caption":
        q = _pick(rng, ("Describe the image.", "What is in this picture?",
                        "Write a caption for this image."))
        n = len(objs)
        cot = f"There {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} {'shape' if n == 1 else 'shapes'}."
        return dict(kind=kind, question=q, cot=cot, answer=caption(scene, rng))
    raise ValueError(f"question: unknown kind {kind!r}")


def cot_answer(cot: str, answer: str) -> str:
    """The unified reasoning format."""
    return f"<think> {cot} </think> {answer}"


def extract_answer(text: str) -> str:
    """The final answer after the last `</think>` (the whole text if there is none), stripped."""
    i = text.rfind("</think>")
    return (text[i + len("</think>"):] if i >= 0 else text).strip().rstrip(".").strip()
