"""Text reasoning: arithmetic word problems of 1-3 steps with a worked chain of thought and an
extractable final integer answer; and the plain-text corpus for the lm task."""

from __future__ import annotations

import re

import numpy as np

from mmada_jax.data.shapesworld import knowledge, language, scenes

NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jade")
THINGS = ("apples", "marbles", "stickers", "pencils", "shells", "cards", "coins", "stamps")


DEFAULT_DIFFICULTY = dict(max_steps=3, max_start=20, max_add=15)
COT_STYLES = ("full", "equations")


def cot_style(data_cfg) -> str:
    """`config.data.shapesworld.arith_cot`: 'full' (equations, then "So NAME has N THINGS.") or
    'equations' (the equations alone: fewer tokens to learn for a small model)."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    style = str(sw.get("arith_cot", "full"))
    if style not in COT_STYLES:
        raise ValueError(f"config.data.shapesworld.arith_cot={style!r}: known {COT_STYLES}")
    return style


def difficulty(data_cfg) -> dict:
    """Problem-size knobs from `config.data.shapesworld` (`arith_max_steps`, `arith_max_start`,
    `arith_max_add`); the defaults are the full 1-3 step problems."""
    sw = data_cfg.get("shapesworld", {}) if data_cfg is not None else {}
    return {k: int(sw.get(f"arith_{k}", v)) for k, v in DEFAULT_DIFFICULTY.items()}


def arithmetic_problem(rng: np.random.Generator, steps: int | None = None, max_steps: int = 3,
                       max_start: int = 20, max_add: int = 15, cot: str = "full") -> dict:
    """{question, cot, answer} with `answer` a non-negative integer string: a start value in
    [2, max_start), then 1..max_steps operations (add 1..max_add-1, give away, multiply by 2-3).
    `cot`: 'full' ends the worked steps with "So NAME has N THINGS."; 'equations' stops at them."""
    if cot not in COT_STYLES:
        raise ValueError(f"arithmetic_problem: cot={cot!r}; known {COT_STYLES}")
    steps = int(steps or rng.integers(1, max_steps + 1))
    name = NAMES[int(rng.integers(len(NAMES)))]
    thing = THINGS[int(rng.integers(len(THINGS)))]
    value = int(rng.integers(2, max_start))
    sentences = [f"{name} has {value} {thing}."]
    work = []
    for _ in range(steps):
        op = ("add", "sub", "mul")[int(rng.integers(3))]
        if op == "mul" and value > 30:
            op = "add"
        if op == "sub" and value < 2:
            op = "add"
        if op == "add":
            k = int(rng.integers(1, max_add))
            sentences.append(f"Then {name} finds {k} more.")
            work.append(f"{value} + {k} = {value + k}.")
            value += k
        elif op == "sub":
            k = int(rng.integers(1, value))
            sentences.append(f"Then {name} gives away {k}.")
            work.append(f"{value} - {k} = {value - k}.")
            value -= k
        else:
            k = int(rng.integers(2, 4))
            sentences.append(f"Then the number of {thing} becomes {k} times as many.")
            work.append(f"{value} * {k} = {value * k}.")
            value *= k
    q = " ".join(sentences) + f" How many {thing} does {name} have now?"
    cot = " ".join(work) + (f" So {name} has {value} {thing}." if cot == "full" else "")
    return dict(question=q, cot=cot, answer=str(value))


def extract_int(text: str) -> int | None:
    """The integer in the final answer (after `</think>`), or None."""
    m = re.findall(r"-?\d+", language.extract_answer(text))
    return int(m[-1]) if m else None


def corpus_document(rng: np.random.Generator, cot: str = "full", caption_style: str = "varied",
                    **arith) -> str:
    """A short plain-text document: fact sentences, scene descriptions (captions in
    `caption_style`) and worked problems (their steps written in the `cot` style, as the
    fine-tuning chats write them)."""
    parts = []
    for _ in range(int(rng.integers(2, 6))):
        kind = int(rng.integers(3))
        if kind == 0:
            parts.append(knowledge.fact_sentence(knowledge.ITEMS[int(rng.integers(len(knowledge.ITEMS)))], rng))
        elif kind == 1:
            parts.append(language.caption(scenes.random_scene(rng, "train"), rng, caption_style))
        else:
            p = arithmetic_problem(rng, cot=cot, **arith)
            parts.append(f"{p['question']} {p['cot']}")
    return " ".join(parts)
