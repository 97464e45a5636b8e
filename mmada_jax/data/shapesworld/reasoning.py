"""Text reasoning: arithmetic word problems of 1-3 steps with a worked chain of thought and an
extractable final integer answer; and the plain-text corpus for the lm task."""

from __future__ import annotations

import re

import numpy as np

from mmada_jax.data.shapesworld import knowledge, language, scenes

NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana", "Ivan", "Jade")
THINGS = ("apples", "marbles", "stickers", "pencils", "shells", "cards", "coins", "stamps")


def arithmetic_problem(rng: np.random.Generator, steps: int | None = None) -> dict:
    """{question, cot, answer} with `answer` a non-negative integer string."""
    steps = int(steps or rng.integers(1, 4))
    name = NAMES[int(rng.integers(len(NAMES)))]
    thing = THINGS[int(rng.integers(len(THINGS)))]
    value = int(rng.integers(2, 20))
    sentences = [f"{name} has {value} {thing}."]
    work = []
    for _ in range(steps):
        op = ("add", "sub", "mul")[int(rng.integers(3))]
        if op == "mul" and value > 30:
            op = "add"
        if op == "sub" and value < 2:
            op = "add"
        if op == "add":
            k = int(rng.integers(1, 15))
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
    cot = " ".join(work) + f" So {name} has {value} {thing}."
    return dict(question=q, cot=cot, answer=str(value))


def extract_int(text: str) -> int | None:
    """The integer in the final answer (after `</think>`), or None."""
    m = re.findall(r"-?\d+", language.extract_answer(text))
    return int(m[-1]) if m else None


def corpus_document(rng: np.random.Generator) -> str:
    """A short plain-text document: fact sentences, scene descriptions and a worked problem."""
    parts = []
    for _ in range(int(rng.integers(2, 6))):
        kind = int(rng.integers(3))
        if kind == 0:
            parts.append(knowledge.fact_sentence(knowledge.ITEMS[int(rng.integers(len(knowledge.ITEMS)))], rng))
        elif kind == 1:
            parts.append(language.caption(scenes.random_scene(rng, "train"), rng))
        else:
            p = arithmetic_problem(rng)
            parts.append(f"{p['question']} {p['cot']}")
    return " ".join(parts)
