"""Text generated from ShapesWorld scenes: captions in varied templates, and the understanding
questions (counting, color, position, POPE-style existence, captioning) with a worked chain of
thought in the unified `<think> ... </think> answer` format.
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import captions
from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.data.shapesworld import vqa_cot

# the registered worked-answer styles (a live view: styles registered later appear here too)
VQA_COT_STYLES = vqa_cot.VQA_COTS

NUMBER_WORDS = captions.NUMBER_WORDS


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


QUESTION_KINDS = ("count", "color", "position", "exists", "caption")
COUNT_TARGETS = ("all", "color", "shape")


def check_weights(weights, known: tuple, what: str) -> dict:
    """`weights` (name -> weight >= 0, some > 0) checked against `known`; {} or None -> {}
    (a uniform pick). Errors name `what` (the config key)."""
    w = dict(weights or {})
    unknown = sorted(set(w) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown {unknown}; known {known}")
    try:
        w = {k: float(v) for k, v in w.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{what}: weights must be numbers, got {weights}") from None
    bad = {k: v for k, v in w.items() if not v >= 0.0}
    if bad:
        raise ValueError(f"{what}: weights must be >= 0, got {bad}")
    if w and sum(w.values()) <= 0:
        raise ValueError(f"{what}: weights {w} sum to 0")
    return w


def _pick_weighted(rng, options: tuple, weights: dict | None):
    """A uniform `_pick` when `weights` is empty (the same draws as before weights existed);
    else options drawn in proportion to their weight (a missing option weighs 0)."""
    if not weights:
        return _pick(rng, options)
    cum = np.cumsum([weights.get(o, 0.0) for o in options])
    # the first option whose cumulative weight exceeds u: zero-weight options are never drawn
    i = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    return options[min(i, len(options) - 1)]


def caption(scene: sc.Scene, rng: np.random.Generator, style: str = "varied") -> str:
    """A caption that determines the image (every object's size, color, shape and cell), written
    in the registered caption style `style` (`captions.py`)."""
    return captions.get_caption_style(style).caption(scene, rng)


def caption_style(data_cfg) -> str:
    """`config.data.shapesworld.caption_style` ('varied' when absent), checked against the
    registered styles (`captions.py`)."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    style = str(sw.get("caption_style", "varied"))
    if style not in captions.CAPTION_STYLES:
        raise ValueError(f"config.data.shapesworld.caption_style={style!r}: known "
                         f"{tuple(captions.CAPTION_STYLES.names())}")
    return style


def vqa_cot_style(data_cfg) -> str:
    """`config.data.shapesworld.vqa_cot`, checked against the registered styles
    (`vqa_cot.py`): 'inventory' (the default here), 'factored', 'counted', 'matched',
    'filtered', 'asked_last', 'color_first'."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    style = str(sw.get("vqa_cot", "inventory"))
    if style not in VQA_COT_STYLES:
        raise ValueError(f"config.data.shapesworld.vqa_cot={style!r}: known "
                         f"{tuple(VQA_COT_STYLES)}")
    return style


def check_share(value, what: str) -> float:
    """`value` as a float in [0, 1]; errors name `what` (the config key)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{what}: must be a number in [0, 1], got {value!r}")
    return v


def count_repeats(data_cfg) -> float:
    """`config.data.shapesworld.vqa_count_repeats`, checked (0 when absent)."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    return check_share(sw.get("vqa_count_repeats", 0.0),
                       "config.data.shapesworld.vqa_count_repeats")


def _repeated(values) -> list:
    """The values that occur two or more times, sorted."""
    values = list(values)
    return sorted({v for v in values if values.count(v) >= 2})


def question_weights(data_cfg) -> tuple[dict, dict]:
    """(`config.data.shapesworld.vqa_kind_weights`, `...vqa_count_weights`), checked: which
    training questions are asked how often (empty: uniform, as before the fields existed)."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    def read(key, known):
        w = sw.get(key, None) or {}
        w = w.to_dict() if hasattr(w, "to_dict") else dict(w)
        return check_weights(w, known, f"config.data.shapesworld.{key}")
    return read("vqa_kind_weights", QUESTION_KINDS), read("vqa_count_weights", COUNT_TARGETS)


def question(scene: sc.Scene, rng: np.random.Generator, kind: str | None = None,
             style: str = "inventory", avoid_pairs=frozenset(), kind_weights=None,
             count_weights=None, caption_style: str = "varied",
             count_repeats: float = 0.0) -> dict:
    """A question about the scene: {kind, question, cot, answer}. `answer` is the short final
    answer; the assistant text is `<think> {cot} </think> {answer}` (see `cot_answer`).

    `style` names a registered worked-answer style (`vqa_cot.py`): it writes counting, color,
    position and existence answers (the last two start from an inventory, "I see a large blue
    circle in the ...", in every style but 'color_first'). Styles draw nothing, so every style
    asks the same questions with the same answers.

    avoid_pairs: (color, shape) pairs never asked about in a negative existence question. The
    training split passes `scenes.HELD_OUT_COMBOS`: those pairs are absent from every training
    scene, so asking about them there would only ever teach "no" for exactly the pairs the test
    split asks about (a GPU run's POPE recall was 0.55 with precision 0.93).

    kind_weights / count_weights: {name: weight} over QUESTION_KINDS (when `kind` is None) and
    over what a count counts (COUNT_TARGETS); empty or None draws uniformly.

    count_repeats: the share of one-color and one-shape counts that ask about a color or shape
    the scene holds two or more of, where it holds one (drawn uniformly they are rare: of 1-4
    objects in 8 colors, "how many <color> shapes" is answered 2 or 3 about one time in ten, and
    GPU runs 12-14 answered those 0-1 of 4-5 right). 0 draws no extra number: the same
    questions as before the argument existed."""
    cot_style = vqa_cot.get_vqa_cot(style)
    count_repeats = check_share(count_repeats, "count_repeats")
    kind = kind or _pick_weighted(rng, QUESTION_KINDS,
                                  check_weights(kind_weights, QUESTION_KINDS, "kind_weights"))
    objs = list(scene.objects)
    if kind == "count":
        attr = _pick_weighted(rng, COUNT_TARGETS,
                              check_weights(count_weights, COUNT_TARGETS, "count_weights"))
        if attr == "all":
            q, match, plural, singular = "How many shapes are in the image?", (lambda o: True), \
                "shapes", "shape"
        elif attr == "color":
            colors = [o.color for o in objs] + list(sc.COLOR_NAMES[:2])
            if count_repeats > 0 and rng.random() < count_repeats:
                colors = _repeated(o.color for o in objs) or colors
            color = _pick(rng, colors)
            q, match, plural, singular = f"How many {color} shapes are there?", \
                (lambda o: o.color == color), f"{color} shapes", f"{color} shape"
        else:
            shapes = sc.SHAPES
            if count_repeats > 0 and rng.random() < count_repeats:
                shapes = _repeated(o.shape for o in objs) or shapes
            shape = _pick(rng, shapes)
            q, match, plural, singular = f"How many {shape}s are there?", \
                (lambda o: o.shape == shape), f"{shape}s", shape
        n = sum(map(match, objs))
        head = cot_style.count_head(objs, attr, match, plural, singular)
        noun = cot_style.count_noun(attr, plural, singular)
        cot = f"{head} Counting the {noun}: there {'is' if n == 1 else 'are'} {n}."
        return dict(kind=kind, question=q, cot=cot, answer=str(n))
    if kind == "color":
        o = _pick(rng, objs)
        q = f"What color is the shape in the {sc.position_name(o.row, o.col)}?"
        return dict(kind=kind, question=q, cot=cot_style.color_cot(objs, o), answer=o.color)
    if kind == "position":
        o = _pick(rng, objs)
        pos = sc.position_name(o.row, o.col)
        q = f"Where is the {o.size} {o.color} {o.shape}?"
        return dict(kind=kind, question=q, cot=cot_style.position_cot(objs, o), answer=pos)
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
        return dict(kind=kind, question=q, cot=cot_style.exists_cot(objs, color, shape, yes),
                    answer="yes" if yes else "no")
    if kind == "caption":
        q = _pick(rng, ("Describe the image.", "What is in this picture?",
                        "Write a caption for this image."))
        n = len(objs)
        cot = f"There {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} {'shape' if n == 1 else 'shapes'}."
        return dict(kind=kind, question=q, cot=cot, answer=caption(scene, rng, caption_style))
    raise ValueError(f"question: unknown kind {kind!r}")


def cot_answer(cot: str, answer: str) -> str:
    """The unified reasoning format."""
    return f"<think> {cot} </think> {answer}"


def extract_answer(text: str) -> str:
    """The final answer after the last `</think>` (the whole text if there is none), stripped."""
    i = text.rfind("</think>")
    return (text[i + len("</think>"):] if i >= 0 else text).strip().rstrip(".").strip()
