"""benchmarks/count_consistency.py on hand-made answers: right worked answers, right listings
with a wrong count, and wrong listings that the count follows."""

import importlib.util
import os
import re

import numpy as np

from mmada_jax.data.shapesworld import language
from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.evals import shapesworld_eval as swe

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                     "count_consistency.py")
spec = importlib.util.spec_from_file_location("count_consistency", _PATH)
cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)


def _factored(items, style="factored"):
    """Each item's own question asked of its scene in `style` (same draws: the eval items use
    the inventory style, so rebuild the CoT with a matching question)."""
    out = []
    for it in items:
        s = sc.Scene.from_json(it["scene"])
        for seed in range(2000):  # find the draw that asks the same counting question
            q = language.question(s, np.random.default_rng(seed), "count", style=style)
            if q["question"] == it["question"]:
                out.append(q)
                break
        else:
            out.append(None)
    return out


def test_count_consistency_on_hand_made_answers():
    items = swe.vqa_items(30, "test", 0, max_objects=4)
    counts = [it for it in items if it["kind"] == "count"]
    qs = _factored(counts)
    assert all(q is not None for q in qs)

    def rows(make):
        out, k = [], 0
        for it in items:
            if it["kind"] != "count":
                out.append(dict(task="vqa", question=it["question"], response="", correct=False))
                continue
            out.append(dict(task="vqa", question=it["question"], response=make(qs[k])))
            k += 1
        return out

    right = cc.analyse(rows(lambda q: language.cot_answer(q["cot"], q["answer"])), items)
    assert right["count_questions"] == len(counts) == right["parsed"]
    assert right["accuracy"] == right["listing_right"] == right["follows"] == 1.0
    assert right["right_listing_wrong_count"] == 0 and right["listing_too_long"] == 0
    forms = {cc.target(it["question"])[0] for it in counts}
    assert set(right["accuracy_by_target"]) == forms and len(forms) >= 2
    assert all(v == 1.0 for v in right["accuracy_by_target"].values())
    per_answer = right["right_by_answer"]
    assert sum(int(v.split("/")[1]) for v in per_answer.values()) == len(counts)
    assert all(k.split("=")[0] in forms and v.split("/")[0] == v.split("/")[1]
               for k, v in per_answer.items())
    by_held = right["right_by_held_out"]  # split by whether a held-out object is counted
    want_held = {}
    for it in counts:
        attr, value = cc.target(it["question"])
        held = any(sc.is_held_out(o.color, o.shape) and (attr == "all" or
                                                           getattr(o, attr) == value)
                   for o in sc.Scene.from_json(it["scene"]).objects)
        key = f"{attr}:{'held' if held else 'seen'}"
        want_held[key] = want_held.get(key, 0) + 1
    assert by_held == {k: f"{n}/{n}" for k, n in sorted(want_held.items())}
    assert any(k.endswith(":held") for k in by_held) and any(k.endswith(":seen") for k in by_held)

    def repeat_last(q):  # a listing of several entries writes its last one twice
        head, rest = q["cot"].split(". ", 1)
        if " and " not in head:
            return language.cot_answer(q["cot"], q["answer"])
        return language.cot_answer(f"{head} and {head.split(' and ')[-1]}. {rest}", q["answer"])
    long_ = cc.analyse(rows(repeat_last), items)
    n_multi = sum(" and " in q["cot"].split(". ")[0] for q in qs)
    assert long_["listing_too_long"] == n_multi > 0
    assert long_["accuracy"] == 1.0 and long_["listing_right"] == 1 - n_multi / len(qs)

    def off_by_one(q):
        wrong = str(int(q["answer"]) + 1)
        return language.cot_answer(q["cot"].replace(f" {q['answer']}.", f" {wrong}."), wrong)
    bad = cc.analyse(rows(off_by_one), items)
    assert all(v.startswith("0/") for v in bad["right_by_answer"].values())
    assert all(v.startswith("0/") for v in bad["right_by_held_out"].values())
    assert bad["accuracy"] == bad["follows"] == 0.0 and bad["listing_right"] == 1.0
    assert bad["right_listing_wrong_count"] == len(counts)

    def empty_listing(q):  # a listing of nothing that the count (0) follows
        head = q["cot"].split(". ")[0]
        cot = q["cot"].replace(head, head.split(":")[0] + ": none" if ":" in head else
                               "I see shapes in none")
        return language.cot_answer(cot.split(" Counting")[0] + " Counting: there are 0.", "0")
    none = cc.analyse(rows(empty_listing), items)
    assert none["follows"] == 1.0 and none["listing_right"] == 0.0
    assert abs(none["accuracy"] - np.mean([q["answer"] == "0" for q in qs])) < 1e-9


def test_count_consistency_on_filtered_listings():
    """Filtered listings name only the counted objects' cells: right ones score 1.0; dropping a
    listed cell (the count following it) makes the listing wrong and the count follow it."""
    items = swe.vqa_items(40, "test", 1, max_objects=4)
    counts = [it for it in items if it["kind"] == "count"]
    qs = _factored(counts, style="filtered")
    assert all(q is not None for q in qs)

    def rows(make):
        qi = iter(qs)
        return [dict(task="vqa", question=it["question"],
                     response=make(next(qi)) if it["kind"] == "count" else "")
                for it in items]

    right = cc.analyse(rows(lambda q: language.cot_answer(q["cot"], q["answer"])), items)
    assert right["parsed"] == len(counts) and right["accuracy"] == 1.0
    assert right["listing_right"] == right["follows"] == 1.0

    def drop_last(q):  # "I see circles in A and B." -> "I see circles in A." with count n - 1
        head, rest = q["cot"].split(". Counting ")
        if " and " not in head:
            return language.cot_answer(q["cot"], q["answer"])
        n = str(int(q["answer"]) - 1)
        rest = rest.replace(f" {q['answer']}.", f" {n}.")
        return language.cot_answer(f"{head.rsplit(' and ', 1)[0]}. Counting {rest}", n)
    def misnamed(q):  # the right cells under another name: "I see circles" asked for squares
        head, rest = q["cot"].split(". Counting ")
        other = {"circle": "square", "square": "circle", "triangle": "circle"}
        words = head.split(" ")
        word = words[3] if words[2] in ("no", "one") else words[2]
        root = word[:-1] if word.endswith("s") else word
        swap = other.get(root, "green" if root != "green" else "blue")
        head = head.replace(f" {root}", f" {swap}", 1)
        return language.cot_answer(f"{head}. Counting {rest}", q["answer"])
    wrong_name = cc.analyse(rows(misnamed), items)
    assert wrong_name["accuracy"] == wrong_name["follows"] == 1.0
    n_all = sum(cc.target(it["question"])[0] == "all" for it in counts)  # unfiltered: cells only
    assert 0 < n_all < len(counts) and wrong_name["right_listing_wrong_count"] == 0
    assert abs(wrong_name["listing_right"] - n_all / len(counts)) < 1e-9
    dropped = cc.analyse(rows(drop_last), items)
    n_multi = sum(" and " in q["cot"].split(". Counting")[0] for q in qs)
    assert n_multi > 0 and dropped["follows"] == 1.0
    assert abs(dropped["listing_right"] - (1 - n_multi / len(qs))) < 1e-9
    assert abs(dropped["accuracy"] - (1 - n_multi / len(qs))) < 1e-9


def test_position_consistency_on_hand_made_answers():
    """analyse_positions: the true worked answers follow their inventory; answering the last
    listed cell is counted as such; dropping the asked object from the inventory is seen."""
    def ambiguous(it):  # two objects fit the question's description
        s = sc.Scene.from_json(it["scene"])
        asked = it["question"][len("Where is the "):-1]
        return sum(f"{o.size} {o.color} {o.shape}" == asked for o in s.objects) > 1
    items = [it for it in swe.vqa_items(60, "test", 2, max_objects=4)
             if it["kind"] != "position" or not ambiguous(it)]
    pos = [it for it in items if it["kind"] == "position"]
    assert len(pos) >= 10

    def rows(make):
        return [dict(task="vqa", question=it["question"],
                     response=make(it) if it["kind"] == "position" else "") for it in items]

    def true_cot(it):
        s = sc.Scene.from_json(it["scene"])
        for seed in range(3000):
            q = language.question(s, np.random.default_rng(seed), "position", style="factored")
            if q["question"] == it["question"]:
                return q
        raise AssertionError(it["question"])
    cots = {it["question"] + it["scene"]: true_cot(it) for it in pos}

    def right(it):
        q = cots[it["question"] + it["scene"]]
        return language.cot_answer(q["cot"], q["answer"])
    ok = cc.analyse_positions(rows(right), items)
    assert ok["position_questions"] == len(pos)
    assert ok["accuracy"] == ok["asked_listed"] == ok["listing_right"] == ok["follows"] == 1.0
    n_last = sum(sc.Scene.from_json(it["scene"]).objects and
                 cc.inventory_entries(right(it))[-1][3] == it["answer"] for it in pos)
    assert abs(ok["last_cell"] - n_last / len(pos)) < 1e-9

    def last_cell(it):
        q = cots[it["question"] + it["scene"]]
        cell = cc.inventory_entries(q["cot"])[-1][3]
        return language.cot_answer(q["cot"].rsplit(" is in the ", 1)[0] + f" is in the {cell}.",
                                   cell)
    lc = cc.analyse_positions(rows(last_cell), items)
    assert lc["last_cell"] == 1.0 and lc["listing_right"] == 1.0
    assert abs(lc["accuracy"] - n_last / len(pos)) < 1e-9 and lc["follows"] == lc["accuracy"]

    def unlisted(it):  # the inventory leaves the asked object out
        q = cots[it["question"] + it["scene"]]
        asked = it["question"][len("Where is the "):-1]
        head, rest = q["cot"].split(". ", 1)
        parts = [p for p in re.split(r", | and ", head[len("I see "):]) if not p.startswith(
            f"a {asked} ")]
        head = "I see " + (", ".join(parts) if parts else "nothing")
        return language.cot_answer(f"{head}. {rest}", q["answer"])
    ul = cc.analyse_positions(rows(unlisted), items)
    assert ul["asked_listed"] == ul["follows"] == ul["listing_right"] == 0.0
    assert ul["accuracy"] == 1.0


def test_position_split_by_held_out_pair():
    """analyse_positions on one-color listings ('color_first') read as listings, and the
    held-out split: true answers are all right; answering every question about a training pair
    with the held-out object's cell is counted in seen_at_held_out and asked_seen, questions about
    the held-out pair untouched."""
    items = swe.vqa_items(300, "test", 5, max_objects=4)
    pos = [it for it in items if it["kind"] == "position"]

    def cot(it):
        s = sc.Scene.from_json(it["scene"])
        size, color, shape = it["question"][len("Where is the "):-1].split()
        o = next(o for o in s.objects if (o.size, o.color, o.shape) == (size, color, shape)
                 and sc.position_name(o.row, o.col) == it["answer"])
        return language.vqa_cot.get_vqa_cot("color_first").position_cot(s.objects, o)

    def rows(answer):
        return [dict(task="vqa", question=it["question"],
                     response=language.cot_answer(cot(it), answer(it))
                     if it["kind"] == "position" else "") for it in items]

    def kind_of(it):  # None: one object; else whether the question asks about the held-out pair
        s = sc.Scene.from_json(it["scene"])
        if len(s.objects) < 2:
            return None
        _, color, shape = it["question"][len("Where is the "):-1].split()
        return (color, shape) in sc.HELD_OUT_COMBOS

    n_held = sum(kind_of(it) is True for it in pos)
    n_seen = sum(kind_of(it) is False for it in pos)
    assert n_held >= 5 and n_seen >= 20
    ok = cc.analyse_positions(rows(lambda it: it["answer"]), items)
    assert ok["accuracy"] == ok["listing_right"] == ok["follows"] == ok["asked_listed"] == 1.0
    assert (ok["asked_held_out"], ok["asked_seen"]) == (f"{n_held}/{n_held}", f"{n_seen}/{n_seen}")
    assert ok["seen_at_held_out"] == 0.0

    def held_cell(it):
        s = sc.Scene.from_json(it["scene"])
        if kind_of(it) is False:
            o = next(o for o in s.objects if (o.color, o.shape) in sc.HELD_OUT_COMBOS)
            return sc.position_name(o.row, o.col)
        return it["answer"]
    bad = cc.analyse_positions(rows(held_cell), items)
    assert bad["asked_seen"] == f"0/{n_seen}" and bad["seen_at_held_out"] == 1.0
    assert bad["asked_held_out"] == f"{n_held}/{n_held}"
    assert abs(bad["accuracy"] - (len(pos) - n_seen) / len(pos)) < 1e-9


def test_existence_split_by_label_and_held_out_pair():
    """analyse_existence: always answering "yes" gets every yes-question right and no no-question;
    the split by pair matches a count from the questions' own words; the eval's stored verdict
    wins over the response."""
    items = swe.pope_items(120, "test", 3, max_objects=4)
    held = sum(tuple(it["question"].split()[-5:-3]) in sc.HELD_OUT_COMBOS and it["label"] == "yes"
               for it in items)
    n_yes = sum(it["label"] == "yes" for it in items)
    assert 0 < held < n_yes
    rows = [dict(task="pope", response=language.cot_answer("x", "yes")) for _ in items]
    got = cc.analyse_existence(rows, items)
    assert got["yes_held"] == f"{held}/{held}"
    assert got["yes_seen"] == f"{n_yes - held}/{n_yes - held}"
    assert got["no_held"].startswith("0/") and got["no_seen"].startswith("0/")
    assert sum(int(v.split("/")[1]) for v in got.values()) == len(items)
    flipped = cc.analyse_existence([dict(r, correct=False) for r in rows], items)
    assert all(v.startswith("0/") for v in flipped.values())


def test_color_split_and_confusions():
    """analyse_colors: true answers are all right, split by whether the asked shape is the held-out
    pair; answering every held-out shape's color with a fixed wrong color counts exactly those
    questions as wrong, named 'color shape -> answer'; a malformed answer is '(not a color)'."""
    items = [it for it in swe.vqa_items(240, "test", 7, max_objects=4) if it["kind"] == "color"]

    def asked(it):
        cell = it["question"][len("What color is the shape in the "):-1]
        return next(o for o in sc.Scene.from_json(it["scene"]).objects
                    if sc.position_name(o.row, o.col) == cell)
    held = [it for it in items if sc.is_held_out(asked(it).color, asked(it).shape)]
    assert 0 < len(held) < len(items)

    def rows(answer):
        return [dict(response=language.cot_answer("x", answer(it))) for it in items]
    ok = cc.analyse_colors(rows(lambda it: it["answer"]), items)
    n_seen = len(items) - len(held)
    assert ok == dict(asked_held_out=f"{len(held)}/{len(held)}",
                      asked_seen=f"{n_seen}/{n_seen}", wrong={})

    def wrong_color(it):
        o = asked(it)
        if not sc.is_held_out(o.color, o.shape):
            return it["answer"]
        return "white" if o.color != "white" else "green"
    bad = cc.analyse_colors(rows(wrong_color), items)
    assert bad["asked_held_out"] == f"0/{len(held)}" and bad["asked_seen"] == f"{n_seen}/{n_seen}"
    want = {}
    for it in held:
        k = f"{asked(it).color} {asked(it).shape} -> white"
        want[k] = want.get(k, 0) + 1
    assert bad["wrong"] == want
    junk = cc.analyse_colors([dict(response="no think block")] * len(items), items)
    assert sum(junk["wrong"].values()) == len(items)
    assert all(k.endswith("-> (not a color)") for k in junk["wrong"])
