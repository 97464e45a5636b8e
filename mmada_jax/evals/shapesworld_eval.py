"""ShapesWorld evaluation sets and their scores (pure Python; the model side is mmada_jax.evaluate).

Sets, each a list of dict items drawn deterministically from (split, seed):
  reasoning   arithmetic word problems (text CoT)          -> accuracy, format rate
  vqa         count / color / position questions on scenes -> accuracy (per kind)
  pope        balanced yes/no existence questions           -> accuracy, F1 (POPE rules)
  t2i         GenEval-style prompts, one tag each (single_object, two_object, counting, colors,
              position, color_attr), in-distribution captions of target scenes; generated images
              are read back by the scene parser and scored with `evals.scene_geneval`
  wise        world-knowledge prompts ('a small tomato in the top left') -> WISE-style attribute
              accuracy of the parsed image (test split: items never drawn in training)

The `test` split draws scenes with held-out (color, shape) combos and held-out knowledge items;
`train` draws the training distribution (UniGRPO uses it for its prompts).
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import knowledge, language, reasoning, scenes as sc
from mmada_jax.evals import answers as answers_lib
from mmada_jax.evals import geneval, pope, scene_geneval, wise
from mmada_jax.evals.scene_types import ParsedObject

TAGS = geneval.TAGS
_SPLIT_SEED = {"train": 11, "test": 29}


def _rng(split: str, seed: int, name: str) -> np.random.Generator:
    if split not in _SPLIT_SEED:
        raise ValueError(f"shapesworld eval: split must be 'train' or 'test', got {split!r}")
    return np.random.default_rng([seed, _SPLIT_SEED[split], sum(map(ord, name))])


# ---------------------------------------------------------------------------- text / vqa
def reasoning_items(n: int, split: str = "test", seed: int = 0, **difficulty) -> list[dict]:
    """`difficulty`: arithmetic_problem's size knobs (reasoning.difficulty(config.data))."""
    rng = _rng(split, seed, "reasoning")
    out = []
    for _ in range(n):
        p = reasoning.arithmetic_problem(rng, **difficulty)
        out.append(dict(task="reasoning", question=p["question"], answer=p["answer"],
                        cot=p["cot"]))
    return out


def vqa_items(n: int, split: str = "test", seed: int = 0,
              kinds=("count", "color", "position"), max_objects: int = sc.MAX_OBJECTS,
              first_kind: int = 0) -> list[dict]:
    """n questions on random scenes of `split`, their kinds taken in turn from `kinds` starting
    at index `first_kind` (a caller drawing a few items at a time passes a running count, so
    that every kind comes up equally often)."""
    rng = _rng(split, seed, "vqa")
    out = []
    for i in range(n):
        scene = sc.random_scene(rng, split, max_objects=max_objects)
        q = language.question(scene, rng, kinds[(first_kind + i) % len(kinds)])
        out.append(dict(task="vqa", kind=q["kind"], question=q["question"], answer=q["answer"],
                        cot=q["cot"], scene=scene.to_json()))
    return out


def pope_items(n: int, split: str = "test", seed: int = 0,
               max_objects: int = sc.MAX_OBJECTS) -> list[dict]:
    rng = _rng(split, seed, "pope")
    out, want = [], 0
    while len(out) < n:
        scene = sc.random_scene(rng, split, max_objects=max_objects)
        q = language.question(scene, rng, "exists")
        label = q["answer"]
        if (label == "yes") != (want == 0):  # alternate yes / no: balanced
            continue
        want = 1 - want
        out.append(dict(task="pope", kind="exists", question=q["question"], answer=label,
                        label=label, cot=q["cot"], scene=scene.to_json(),
                        question_id=len(out), text=q["question"]))
    return out


def score_reasoning(responses, items) -> dict:
    """accuracy (final answer), format_rate (`<think>` block then an answer) and sound_rate:
    correct answers reached by sound work (`rl.rewards_equations.sound_work`: true equations on
    the problem's numbers ending at the answer). accuracy - sound_rate is the share of right
    answers behind wrong or missing steps (guessed)."""
    from mmada_jax.rl.rewards import well_formatted
    from mmada_jax.rl.rewards_equations import sound_work
    ok = [answers_lib.answers_match(answers_lib.extract_final_answer(r), it["answer"])
          for r, it in zip(responses, items)]
    fmt = [well_formatted(r) for r in responses]
    sound = [o and sound_work(it["question"], r) for o, r, it in zip(ok, responses, items)]
    return dict(accuracy=_mean(ok), format_rate=_mean(fmt), sound_rate=_mean(sound), n=len(ok),
                correct=ok, sound=sound)


def vqa_prediction(response: str) -> str:
    return language.extract_answer(response or "")


def score_vqa(responses, items) -> dict:
    ok = [answers_lib.answers_match(vqa_prediction(r), it["answer"])
          for r, it in zip(responses, items)]
    per = {}
    for k in sorted({it["kind"] for it in items}):
        per[k] = _mean([o for o, it in zip(ok, items) if it["kind"] == k])
    return dict(accuracy=_mean(ok), per_kind=per, n=len(ok), correct=ok)


def score_pope(responses, items) -> dict:
    out = pope.score_pope(responses, items)
    out.pop("per_category", None)
    return out


# ---------------------------------------------------------------------------- t2i
def _scene_with(rng, split, n, accept) -> sc.Scene:
    for _ in range(10000):
        s = sc.random_scene(rng, split, n)
        if accept(s):
            return s
    raise RuntimeError("shapesworld eval: could not draw a scene for a tag")


def _spec(o: sc.Obj, color=True, size=False) -> dict:
    d = {"shape": o.shape, "count": 1}
    if color:
        d["color"] = o.color
    if size:
        d["size"] = o.size
    return d


def _box(o: sc.Obj):
    return [o.col, o.row, o.col + 1, o.row + 1]


def t2i_item(tag: str, rng, split: str, max_objects: int = sc.MAX_OBJECTS,
             caption_style: str = "varied") -> dict:
    """One GenEval-style prompt: caption (in `caption_style`) of a target scene + metadata for
    its tag (scenes of at most `max_objects` objects; the two-object tags need 2, counting draws
    2..min(3, max))."""
    if tag in ("two_object", "color_attr", "position", "counting") and max_objects < 2:
        raise ValueError(f"t2i_item: tag {tag!r} needs max_objects >= 2, got {max_objects}")
    if tag == "single_object":
        s = sc.random_scene(rng, split, 1)
        inc = [_spec(s.objects[0], color=False)]
        exc = []
    elif tag == "colors":
        s = sc.random_scene(rng, split, 1)
        inc, exc = [_spec(s.objects[0])], []
    elif tag in ("two_object", "color_attr", "position"):
        s = _scene_with(rng, split, 2, lambda s: s.objects[0].shape != s.objects[1].shape)
        a, b = s.objects
        if tag == "two_object":
            inc = [_spec(a, color=False), _spec(b, color=False)]
        elif tag == "color_attr":
            inc = [_spec(a), _spec(b)]
        else:
            rel = sorted(geneval.relative_position(_box(b), _box(a)))
            inc = [_spec(a), dict(_spec(b), position=[rel[0], 0])]
        exc = []
    elif tag == "counting":
        n = int(rng.integers(2, min(3, max_objects) + 1))
        s = _scene_with(rng, split, n, lambda s: len({o.shape for o in s.objects}) == 1)
        shape = s.objects[0].shape
        inc = [{"shape": shape, "count": n}]
        exc = [{"shape": shape, "count": n + 1}]
    else:
        raise ValueError(f"t2i_item: unknown tag {tag!r}; known {TAGS}")
    md = dict(tag=tag, include=inc)
    if exc:
        md["exclude"] = exc
    return dict(task="t2i", tag=tag, prompt=language.caption(s, rng, caption_style),
                scene=s.to_json(),
                metadata=md)


def t2i_items(n_per_tag: int, split: str = "test", seed: int = 0, tags=TAGS,
              max_objects: int = sc.MAX_OBJECTS, caption_style: str = "varied") -> list[dict]:
    rng = _rng(split, seed, "t2i")
    return [t2i_item(tag, rng, split, max_objects, caption_style) for _ in range(n_per_tag)
            for tag in tags]


def parsed_objects(image) -> list[ParsedObject]:
    """The scene parser's reading of an image as `ParsedObject`s."""
    from mmada_jax.data.shapesworld.parser import parse_scene
    return [ParsedObject(o.shape, o.color, o.size, o.row, o.col)
            for o in parse_scene(image).objects]


def score_t2i(images, items) -> dict:
    """GenEval-style tag accuracies (+ overall) and exact-scene / object-F1 of the parses."""
    from mmada_jax.data.shapesworld import parser
    parsed = [parser.parse_scene(im) for im in images]
    objs = [[ParsedObject(o.shape, o.color, o.size, o.row, o.col) for o in p.objects]
            for p in parsed]
    out = scene_geneval.score_scenes([it["metadata"] for it in items], objs)
    fine = [parser.score(p, sc.Scene.from_json(it["scene"])) for p, it in zip(parsed, items)]
    out["exact_scene"] = _mean([f["exact"] for f in fine])
    out["object_f1"] = _mean([f["object_f1"] for f in fine])
    out.pop("reasons", None)
    return out


# ---------------------------------------------------------------------------- wise
def wise_items(n: int, split: str = "test", seed: int = 0,
               max_objects: int = sc.MAX_OBJECTS) -> list[dict]:
    from mmada_jax.data import r2i
    rng = _rng(split, seed, "wise")
    out = []
    for i in range(n):
        s = knowledge.knowledge_scene(rng, split, max_objects)
        required = [dict(shape=o.shape, color=o.color) for o in s.objects]
        out.append(dict(task="wise", prompt_id=i, prompt=knowledge.knowledge_prompt(s, rng),
                        required=required, category="knowledge", scene=s.to_json(),
                        cot=r2i.knowledge_reasoning(s)))
    return out


def score_wise(images, items) -> dict:
    objs = [parsed_objects(im) for im in images]
    return wise.score_wise_attributes(items, objs)


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return float(np.mean(xs)) if xs else float("nan")
