"""ShapesWorld pipeline components: random-access sources and `example(raw, rng)` functions that
turn records into the pipeline's normalized examples (see mmada_jax/data/readers.py):

- `t2i`: caption (or world-knowledge prompt) -> image.
- `caption`: image + "Describe the image." -> caption (no `<think>`; pre-training understanding).
- `vqa`: image + question -> `<think> ... </think> answer` (counting, color, position, POPE-style
  existence with balanced yes/no, captioning).
- `arith`: text reasoning (1-3 step word problems) with a worked CoT.
- `corpus`: plain text (fact sentences, scene descriptions, worked problems) for the lm task.
- `facts`: one fact sentence per example, cycling through every item (small; for fact probes).

Image components read the TFDS build (`use_tfds=True`) or render on the fly (procedural, identical
records; no build step, handy for tests and benchmarks).
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data import images as image_lib
from mmada_jax.data.shapesworld import builder, knowledge, language, reasoning, scenes

CAPTION_PROMPTS = ("Describe the image.", "What is in this picture?", "Describe the scene.")
PROCEDURAL_LEN = 1 << 30  # "infinite" index range of the procedural text sources


class ProceduralScenes:
    """Renders the builder's records on the fly (same content as the TFDS build)."""

    def __init__(self, split: str, num: int, image_size: int, seed: int,
                 knowledge_fraction: float, max_objects: int = scenes.MAX_OBJECTS):
        self.split, self.num, self.image_size = split, num, image_size
        self.seed, self.knowledge_fraction = seed, knowledge_fraction
        self.max_objects = max_objects

    def __len__(self):
        return self.num

    def __getitem__(self, i):
        return builder.record(self.seed, self.split, int(i), self.image_size,
                              self.knowledge_fraction, self.max_objects)

    def __repr__(self):
        return (f"ProceduralScenes({self.split},{self.num},{self.image_size},{self.seed},"
                f"{self.knowledge_fraction},{self.max_objects})")


class IndexSource:
    """Indices 0..n-1 (the procedural text tasks draw everything from the per-index rng)."""

    def __init__(self, n: int = PROCEDURAL_LEN, name: str = "index"):
        self.n, self.name = n, name

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return int(i)

    def __repr__(self):
        return f"IndexSource({self.n},{self.name})"


class ShapesWorldComponent:
    """One ShapesWorld task as a pipeline component."""

    IMAGE_TASKS = ("t2i", "vqa", "caption")
    TASKS = IMAGE_TASKS + ("arith", "corpus", "facts")

    def __init__(self, task: str, split: str = "train", data_dir: str = "", use_tfds: bool = True,
                 build_if_missing: bool = True, image_size: int = 64, num_train: int = 20000,
                 num_test: int = 1000, seed: int = 0, knowledge_fraction: float = 0.2,
                 arith_max_steps: int = 3, arith_max_start: int = 20, arith_max_add: int = 15,
                 max_objects: int = scenes.MAX_OBJECTS, arith_cot: str = "full",
                 vqa_cot: str = "inventory", vqa_kind_weights=None, vqa_count_weights=None,
                 caption_style: str = "varied", vqa_count_repeats: float = 0.0):
        if task not in self.TASKS:
            raise ValueError(f"shapesworld component: task {task!r} unknown; known {self.TASKS}")
        self.task, self.split = task, split
        self.arith = dict(max_steps=arith_max_steps, max_start=arith_max_start,
                          max_add=arith_max_add)
        self.arith_cot = arith_cot
        if vqa_cot not in language.VQA_COT_STYLES:
            raise ValueError(f"shapesworld component: vqa_cot {vqa_cot!r} unknown; known "
                             f"{tuple(language.VQA_COT_STYLES)}")
        self.vqa_cot = vqa_cot
        if caption_style not in language.captions.CAPTION_STYLES:
            raise ValueError(f"shapesworld component: caption_style {caption_style!r} unknown; "
                             f"known {tuple(language.captions.CAPTION_STYLES.names())}")
        self.caption_style = caption_style
        self.vqa_kind_weights = language.check_weights(
            vqa_kind_weights, language.QUESTION_KINDS, "shapesworld component: vqa_kind_weights")
        self.vqa_count_weights = language.check_weights(
            vqa_count_weights, language.COUNT_TARGETS, "shapesworld component: vqa_count_weights")
        self.vqa_count_repeats = language.check_share(
            vqa_count_repeats, "shapesworld component: vqa_count_repeats")
        self.use_tfds, self.data_dir, self.build_if_missing = use_tfds, data_dir, build_if_missing
        self.builder_kwargs = dict(image_size=image_size, num_train=num_train, num_test=num_test,
                                   seed=seed, knowledge_fraction=knowledge_fraction,
                                   max_objects=scenes.check_max_objects(max_objects))

    @property
    def produces(self) -> str:
        return {"t2i": "t2i", "vqa": "chat", "caption": "chat", "arith": "chat", "corpus": "text",
                "facts": "text"}[self.task]

    def source(self):
        if self.task == "facts":
            return IndexSource(len(knowledge.ITEMS) * 5, "facts")
        if self.task not in self.IMAGE_TASKS:
            return IndexSource(name=self.task)
        if self.use_tfds:
            if not self.data_dir:
                raise ValueError("shapesworld: config.data.data_dir is empty")
            b = builder.make_builder(self.data_dir, **self.builder_kwargs)
            builder.ensure_built(b, build=self.build_if_missing)
            return builder.ShapesWorldSource(self.data_dir, self.split, **self.builder_kwargs)
        kw = self.builder_kwargs
        num = kw["num_train"] if self.split == "train" else kw["num_test"]
        return ProceduralScenes(self.split, num, kw["image_size"], kw["seed"],
                                kw["knowledge_fraction"], kw["max_objects"])

    def example(self, raw, rng: np.random.Generator) -> dict:
        if self.task == "arith":
            p = reasoning.arithmetic_problem(rng, **self.arith, cot=self.arith_cot)
            return dict(kind="chat", think=True, messages=[
                dict(role="user", content=p["question"]),
                dict(role="assistant", content=language.cot_answer(p["cot"], p["answer"]))])
        if self.task == "corpus":
            return dict(kind="text", text=reasoning.corpus_document(
                rng, cot=self.arith_cot, caption_style=self.caption_style, **self.arith))
        if self.task == "facts":
            item = knowledge.ITEMS[raw % len(knowledge.ITEMS)]
            return dict(kind="text", text=knowledge.fact_sentence(item, rng))
        img = image_lib.decode(raw["image"])
        scene = scenes.Scene.from_json(raw["scene"])
        if self.task == "t2i":
            text = (knowledge.knowledge_prompt(scene, rng) if raw["kind"] == "knowledge"
                    else language.caption(scene, rng, self.caption_style))
            return dict(kind="t2i", caption=text, image=img)
        if self.task == "caption":  # plain image captioning (no <think>): pre-training mmu
            return dict(kind="chat", think=False, image=img, messages=[
                dict(role="user", content=CAPTION_PROMPTS[int(rng.integers(len(CAPTION_PROMPTS)))]),
                dict(role="assistant", content=language.caption(scene, rng, self.caption_style))])
        # training never asks about the held-out pairs (they would only ever be answered "no")
        avoid = scenes.HELD_OUT_COMBOS if self.split == "train" else frozenset()
        q = language.question(scene, rng, style=self.vqa_cot, avoid_pairs=avoid,
                              kind_weights=self.vqa_kind_weights,
                              count_weights=self.vqa_count_weights,
                              caption_style=self.caption_style,
                              count_repeats=self.vqa_count_repeats)
        return dict(kind="chat", think=True, image=img, messages=[
            dict(role="user", content=q["question"]),
            dict(role="assistant", content=language.cot_answer(q["cot"], q["answer"]))])

    def __repr__(self):
        kw = ",".join(f"{k}={v}" for k, v in sorted(self.builder_kwargs.items()))
        return f"ShapesWorld({self.task},{self.split},tfds={self.use_tfds},{kw})"
