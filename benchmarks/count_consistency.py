"""Do counting and position answers follow the model's own worked listing? Reads an eval's answers.jsonl
(factored counting CoTs: "The colors: blue in the top left and red in the center. Counting the
blue shapes: there is 1."; filtered ones: "I see blue shapes in the top left and the center.
Counting the blue shapes: there are 2.") and reports, over the counting questions:

  accuracy        final answer right
  listing_right   the listing names exactly the scene's objects (the attribute asked about;
                  a filtered listing: exactly the cells of the objects counted)
  follows         final answer == the count the listing implies (right or wrong)
  right_listing_wrong_count   listing right, final answer wrong
  listing_too_long            listings with more entries than the scene has objects (e.g. a
                              cell written twice: "the bottom right and the bottom right")
  accuracy_by_target          accuracy per question form: 'all' ("How many shapes"), 'color'
                              ("How many red shapes"), 'shape' ("How many circles")
  right_by_answer             'right/questions' per form and true count ('shape=2': "How many
                              circles" where there are two)
  right_by_held_out           'right/questions' per form, split by whether the objects counted
                              include the test scene's held-out color/shape pair ('color:held':
                              "How many red shapes" with the held-out red triangle in the scene)

A second line per file does the same for the position answers (`analyse_positions`, with
their split by the test scene's held-out color/shape pair), a third splits the color answers
by pair and lists the wrong ones (`analyse_colors`), a fourth splits the existence (POPE)
answers by label and pair (`analyse_existence`).

    python benchmarks/count_consistency.py runs/sw_gpu/sft/eval/answers.jsonl --max_objects 4

The scenes are regenerated from the eval's item generators (`evals.shapesworld_eval.vqa_items`,
`pope_items`; test split, seed 0 unless told), and each question is checked against its item.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmada_jax.data.shapesworld import language  # noqa: E402
from mmada_jax.data.shapesworld import scenes as sc  # noqa: E402
from mmada_jax.evals import shapesworld_eval as swe  # noqa: E402
from mmada_jax.evals.io import read_jsonl  # noqa: E402

_POS = r"(?:top|middle|bottom|center)(?: (?:left|right))?"


def target(question: str):
    """(attribute, value) the question counts: ('all', None), ('color', c) or ('shape', s)."""
    if question.startswith("How many shapes"):
        return "all", None
    m = re.match(r"How many (\w+) shapes are there\?", question)
    if m:
        return "color", m.group(1)
    m = re.match(r"How many (\w+)s are there\?", question)
    if m:
        return "shape", m.group(1)
    raise ValueError(f"not a counting question: {question!r}")


def listing(response: str, attr: str) -> list[tuple[str | None, str]] | None:
    """[(attribute value or None, position)] from the first sentence of the worked answer. A
    filtered listing ("I see blue shapes in ...", "I see no circles.") names only the counted
    objects' cells: each gets the value the listing names ("blue", "circle"; 'shape' for an
    unfiltered "I see shapes in ...")."""
    think = response.split("<think>", 1)[-1]
    first = think.strip().split(". ")[0].split(" Counting")[0]
    if attr != "all" and is_filtered(response):
        named = filtered_name(response)
        return [(named, p) for p in re.findall(r"the (" + _POS + r")\b", first)]
    if attr == "all":
        return [(None, p) for p in re.findall(r"the (" + _POS + r")\b", first)]
    if attr == "color" and first.startswith("The colors:"):
        return re.findall(r"(\w+) in the (" + _POS + r")\b", first)
    if attr == "shape" and first.startswith("The shapes:"):
        return re.findall(r"a (\w+) in the (" + _POS + r")\b", first)
    return None


def is_filtered(response: str) -> bool:
    """A filtered counting listing: it starts "I see" (factored ones start "The colors:" or
    "The shapes:")."""
    return response.split("<think>", 1)[-1].strip().startswith("I see")


def filtered_name(response: str) -> str:
    """What a filtered listing says it lists: "I see no circles." -> 'circle', "I see one blue
    shape, in ..." -> 'blue'."""
    m = re.match(r"I see (?:no |one )?(\w+)", response.split("<think>", 1)[-1].strip())
    named = m.group(1) if m else ""
    return named[:-1] if named.endswith("s") else named


def truth(scene: sc.Scene, attr: str) -> list[tuple[str | None, str]]:
    objs = sorted(scene.objects, key=lambda o: o.cell)
    val = {"all": lambda o: None, "color": lambda o: o.color, "shape": lambda o: o.shape}[attr]
    return [(val(o), sc.position_name(o.row, o.col)) for o in objs]


def analyse(rows, items) -> dict:
    n = right = lst_ok = follows = rl_wc = parsed = too_long = 0
    by_target, by_answer = {}, {}  # attr / 'attr=answer' -> [questions, right]
    by_held = {}  # 'attr:held' / 'attr:seen' -> [questions, right]
    for r, it in zip(rows, items):
        if it["kind"] != "count":
            continue
        if r["question"] != it["question"]:
            raise ValueError(f"answers and regenerated items differ: {r['question']!r} vs "
                             f"{it['question']!r} (wrong --n, --seed or --max_objects?)")
        attr, value = target(it["question"])
        response = r["response"] or ""
        final = language.extract_answer(response)
        lst = listing(response, attr)
        n += 1
        right += final == it["answer"]
        scene = sc.Scene.from_json(it["scene"])
        counted_held = any(sc.is_held_out(o.color, o.shape) and (
            attr == "all" or getattr(o, attr) == value) for o in scene.objects)
        for key, table in ((attr, by_target), (f"{attr}={it['answer']}", by_answer),
                           (f"{attr}:{'held' if counted_held else 'seen'}", by_held)):
            tally = table.setdefault(key, [0, 0])
            tally[0] += 1
            tally[1] += final == it["answer"]
        if lst is None:
            continue
        parsed += 1
        filtered = attr != "all" and is_filtered(response)
        # a filtered listing is the count's own list: its length is the count it implies
        implied = len(lst) if attr == "all" or filtered else sum(v == value for v, _ in lst)
        true_lst = truth(scene, attr)
        if filtered:  # only the counted objects, named as asked
            true_lst = [t for t in true_lst if t[0] == value]
        ok = sorted(lst, key=str) == sorted(true_lst, key=str)
        if filtered:  # "I see no circles" asked for squares is wrong even with nothing listed
            ok = ok and filtered_name(response) == value
        too_long += len(lst) > len(true_lst)
        lst_ok += ok
        follows += final == str(implied)
        rl_wc += ok and final != it["answer"]
    return dict(count_questions=n, accuracy=right / max(n, 1), parsed=parsed,
                listing_right=lst_ok / max(parsed, 1), follows=follows / max(parsed, 1),
                right_listing_wrong_count=rl_wc, listing_too_long=too_long,
                accuracy_by_target={a: k / q for a, (q, k) in sorted(by_target.items())},
                right_by_answer={a: f"{k}/{q}" for a, (q, k) in sorted(by_answer.items())},
                right_by_held_out={a: f"{k}/{q}" for a, (q, k) in sorted(by_held.items())})


def inventory_entries(response: str) -> list[tuple[str, str, str, str]]:
    """[(size, color, shape, cell)] of the listing a worked answer starts with: an inventory ("I
    see a large red square in the middle left and a small purple circle in the center.") or
    one color's shapes ("The red shapes: a large square in the middle left.", `color_first`)."""
    first = response.split("<think>", 1)[-1].strip().split(". ")[0]
    m = re.match(r"The (\w+) shapes: ", first)
    if m:
        return [(size, m.group(1), shape, cell) for size, shape, cell in re.findall(
            r"a (\w+) (\w+) in the (" + _POS + r")\b", first)]
    return re.findall(r"a (\w+) (\w+) (\w+) in the (" + _POS + r")\b", first)


def analyse_positions(rows, items) -> dict:
    """Do position answers ("Where is the small red square?") follow the listing before them?

      asked_listed   the asked object is in the listing (size, color and shape as asked)
      listing_right  the listing names exactly the scene's objects and cells (a one-color
                     listing: exactly the objects of that color)
      follows        the answer is the cell the listing gives the asked object
      last_cell      the answer is the last listed object's cell (the guess a model makes
                     when it does not look the object up: GPU run 10's readback probe)
      asked_held_out / asked_seen   'right/questions' in scenes of two or more objects, asked
                     about the scene's held-out color/shape pair (`scenes.HELD_OUT_COMBOS`,
                     which no training text contains) or about another object
      seen_at_held_out  of the asked_seen questions, the share answered with the held-out
                     object's cell (GPU run 20: the asked name written in the cell of the
                     pair the model cannot name)
    """
    n = right = asked_listed = lst_ok = follows = last = 0
    split = {True: [0, 0], False: [0, 0]}
    at_held = 0
    for r, it in zip(rows, items):
        if it["kind"] != "position":
            continue
        m = re.match(r"Where is the (\w+) (\w+) (\w+)\?", it["question"])
        if m is None:
            raise ValueError(f"not a position question: {it['question']!r}")
        asked = m.groups()
        response = r["response"] or ""
        final = language.extract_answer(response)
        entries = inventory_entries(response)
        objs = sc.Scene.from_json(it["scene"]).objects
        colors = {e[1] for e in entries}
        listed = [o for o in objs if len(colors) != 1 or o.color in colors] \
            if response.split("<think>", 1)[-1].strip().startswith("The ") else objs
        true = sorted((o.size, o.color, o.shape, sc.position_name(o.row, o.col)) for o in listed)
        cells = [e[3] for e in entries if e[:3] == asked]
        n += 1
        right += final == it["answer"]
        asked_listed += bool(cells)
        lst_ok += sorted(entries) == true
        follows += final in cells  # any listed object that fits the description
        last += bool(entries) and final == entries[-1][3]
        held = [o for o in objs if sc.is_held_out(o.color, o.shape)]
        if len(objs) >= 2 and held:
            is_held = sc.is_held_out(asked[1], asked[2])
            split[is_held][0] += final == it["answer"]
            split[is_held][1] += 1
            if not is_held:
                at_held += final in {sc.position_name(o.row, o.col) for o in held}
    return dict(position_questions=n, accuracy=right / max(n, 1),
                asked_listed=asked_listed / max(n, 1), listing_right=lst_ok / max(n, 1),
                follows=follows / max(n, 1), last_cell=last / max(n, 1),
                asked_held_out="%d/%d" % tuple(split[True]),
                asked_seen="%d/%d" % tuple(split[False]),
                seen_at_held_out=at_held / max(split[False][1], 1))


def analyse_existence(rows, items) -> dict:
    """POPE-style answers ("Is there a red triangle in the image?") as 'right/questions', split
    by the true answer and by whether the pair asked about is a held-out one
    (`scenes.HELD_OUT_COMBOS`, which no training text contains): 'yes_held' are questions about
    the test scene's own held-out object (GPU runs 13 and 18 answered 20 and 18 of 72 right)."""
    counts = {f"{label}_{pair}": [0, 0] for label in ("yes", "no") for pair in ("held", "seen")}
    for r, it in zip(rows, items):
        m = re.match(r"Is there an? (\w+) (\w+) in the image\?", it["question"])
        if m is None:
            raise ValueError(f"not an existence question: {it['question']!r}")
        key = f"{it['label']}_{'held' if sc.is_held_out(*m.groups()) else 'seen'}"
        right = r["correct"] if "correct" in r else (  # the eval's own verdict when stored
            language.extract_answer(r["response"] or "") == it["label"])
        counts[key][0] += bool(right)
        counts[key][1] += 1
    return {k: "%d/%d" % tuple(v) for k, v in counts.items()}


def analyse_colors(rows, items) -> dict:
    """Color answers ("What color is the shape in the top left?") as 'right/questions', split by
    whether the shape asked about is the test scene's held-out color/shape pair, and the wrong
    answers as 'true color shape -> answer': counts (GPU run 20: every wrong one was a held-out
    pair, a red triangle called orange 9 times and a purple triangle blue 3 times)."""
    split = {"held": [0, 0], "seen": [0, 0]}
    wrong = {}
    for r, it in zip(rows, items):
        m = re.match(r"What color is the shape in the (" + _POS + r")\?", it["question"])
        if m is None:
            raise ValueError(f"not a color question: {it['question']!r}")
        objs = sc.Scene.from_json(it["scene"]).objects
        o = next(o for o in objs if sc.position_name(o.row, o.col) == m.group(1))
        answer = language.extract_answer(r["response"] or "")
        key = "held" if sc.is_held_out(o.color, o.shape) else "seen"
        split[key][0] += answer == it["answer"]
        split[key][1] += 1
        if answer != it["answer"]:
            shown = answer if answer in sc.COLOR_NAMES else "(not a color)"
            name = f"{o.color} {o.shape} -> {shown}"
            wrong[name] = wrong.get(name, 0) + 1
    return dict(asked_held_out="%d/%d" % tuple(split["held"]),
                asked_seen="%d/%d" % tuple(split["seen"]),
                wrong=dict(sorted(wrong.items(), key=lambda kv: -kv[1])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("answers", nargs="+", help="answers.jsonl files (one eval each)")
    ap.add_argument("--max_objects", type=int, default=sc.MAX_OBJECTS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test")
    a = ap.parse_args()
    for path in a.answers:
        every = read_jsonl(path)
        rows = [r for r in every if r["task"] == "vqa"]
        items = swe.vqa_items(len(rows), a.split, a.seed, max_objects=a.max_objects)
        res = analyse(rows, items)
        res["accuracy_by_target"] = {a: round(v, 3) for a, v in res["accuracy_by_target"].items()}
        print(path, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                for k, v in res.items()}))
        pos = analyse_positions(rows, items)
        print(path, "positions", json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                             for k, v in pos.items()}))
        colors = [(r, it) for r, it in zip(rows, items) if it["kind"] == "color"]
        if colors:
            print(path, "colors", json.dumps(analyse_colors(*zip(*colors))))
        pope = [r for r in every if r["task"] == "pope"]
        if pope:
            p_items = swe.pope_items(len(pope), a.split, a.seed, max_objects=a.max_objects)
            print(path, "existence", json.dumps(analyse_existence(pope, p_items)))


if __name__ == "__main__":
    main()
