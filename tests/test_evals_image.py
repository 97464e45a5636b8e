"""GenEval-style, parsed-scene and WISE scorers, and the JSON report writer."""

import json
import math
import pathlib

import numpy as np
import pytest

from mmada_jax.evals import geneval, io, report, scene_geneval, wise
from mmada_jax.evals.scene_types import ParsedObject

FIX = pathlib.Path(__file__).parent / "fixtures" / "evals"


def _ref_relations(a, b, thr=0.1):
    """Independent per-axis reference of GenEval's relation rule."""
    off, rev = [], []
    for ax in (0, 1):
        ca, cb = (a[ax] + a[ax + 2]) / 2, (b[ax] + b[ax + 2]) / 2
        d = ca - cb
        size = abs(a[ax + 2] - a[ax]) + abs(b[ax + 2] - b[ax])
        off.append(d)
        rev.append(math.copysign(max(abs(d) - thr * size, 0.0), d) if d else 0.0)
    if all(abs(r) < 1e-3 for r in rev):
        return set()
    n = math.hypot(*off)
    dx, dy = rev[0] / n, rev[1] / n
    names = [("left of", dx < -0.5), ("right of", dx > 0.5), ("above", dy < -0.5), ("below", dy > 0.5)]
    return {k for k, v in names if v}


def test_relative_position_matches_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        xy = rng.uniform(0, 100, size=(2, 2))
        wh = rng.uniform(1, 40, size=(2, 2))
        a = [*xy[0], *(xy[0] + wh[0])]
        b = [*xy[1], *(xy[1] + wh[1])]
        got = geneval.relative_position(a, b)
        assert got == _ref_relations(a, b)
        seen |= got
    assert seen == set(geneval.RELATIONS)
    assert geneval.relative_position([0, 0, 10, 10], [1, 0, 11, 10]) == set()  # overlapping


def _det(cls, box, color=None, score=0.95):
    d = {"class": cls, "bbox": box, "score": score}
    if color:
        d["color"] = color
    return d


def test_geneval_rules_per_tag():
    md = geneval.read_geneval_metadata(FIX / "geneval_metadata.jsonl")
    tags = [m["tag"] for m in md]
    assert tags == list(geneval.TAGS)
    images = {
        "single_object": ([_det("bench", [0, 0, 5, 5])], True),
        "two_object": ([_det("cat", [0, 0, 5, 5]), _det("dog", [9, 0, 12, 5], score=0.2)], False),
        "counting": ([_det("clock", [i * 10, 0, i * 10 + 5, 5]) for i in range(3)]
                     + [_det("clock", [50, 0, 55, 5], score=0.5)], True),  # 4th below 0.9: dropped
        "colors": ([_det("car", [0, 0, 5, 5], "blue", 0.9), _det("car", [9, 0, 14, 5], "red", 0.8)],
                   False),  # top-scored car is blue
        "position": ([_det("cup", [0, 0, 10, 10]), _det("book", [30, 2, 40, 12])], True),
        "color_attr": ([_det("bus", [0, 0, 5, 5], "yellow"), _det("kite", [9, 0, 14, 5], "green")],
                       True),
    }
    dets = [images[t][0] for t in tags]
    out = geneval.score_geneval(md, dets)
    assert out["correct"] == [images[t][1] for t in tags]
    assert "expected dog>=1, found 0" in out["reasons"][1][0]
    # Counting: a 4th confident clock violates the exclude spec.
    ok, why = geneval.evaluate_image(md[2], dets[2][:3] + [_det("clock", [60, 0, 65, 5])])
    assert not ok and "clock<4" in why[0]
    # Position: book left of the cup fails; missing target fails.
    assert not geneval.evaluate_image(md[4], [_det("cup", [30, 0, 40, 10]), _det("book", [0, 0, 10, 10])])[0]
    ok, why = geneval.evaluate_image(md[4], [_det("book", [30, 0, 40, 10])])
    assert not ok and any("no target" in w for w in why)
    # Overall = mean of tag means, not the micro average.
    md2 = md + [md[0], md[0]]
    dets2 = dets + [[], []]
    s = geneval.score_geneval(md2, dets2)
    assert s["per_tag"]["single_object"] == pytest.approx(1 / 3)
    assert s["overall"] == pytest.approx(np.mean([1 / 3, 0, 1, 0, 1, 1]))
    assert s["counts"]["single_object"] == 3


def test_geneval_metadata_validation(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({"prompt": "x", "tag": "shapes", "include": []}) + "\n")
    with pytest.raises(io.EvalDataError, match="record 1.*'tag'"):
        geneval.read_geneval_metadata(p)
    p.write_text(json.dumps({"prompt": "x", "tag": "position", "include": [
        {"class": "a", "count": 1, "position": ["left of", 0]}]}) + "\n")
    with pytest.raises(io.EvalDataError, match=r"include\[0\] field 'position'"):
        geneval.read_geneval_metadata(p)


def test_scene_scorer_on_parsed_objects():
    P = ParsedObject
    md = [
        {"tag": "colors", "include": [{"shape": "square", "color": "blue"}]},
        {"tag": "counting", "include": [{"shape": "circle", "count": 2}],
         "exclude": [{"shape": "circle", "count": 3}]},
        {"tag": "position", "include": [{"shape": "triangle"},
                                        {"shape": "circle", "position": ["left of", 0]}]},
        {"tag": "color_attr", "include": [{"shape": "square", "color": "red", "size": "small"},
                                          {"shape": "circle", "color": "green"}]},
        {"tag": "position", "include": [{"shape": "square"},
                                        {"shape": "circle", "position": ["above", 0]}]},
    ]
    scenes = [
        [P("square", "red", "small", 0, 0), P("square", "blue", "large", 1, 1)],   # blue found
        [P("circle", "red", None, 0, 0), P("circle", "red", None, 0, 1), P("circle", "red", None, 2, 2)],
        [P("triangle", "red", None, 1, 2), P("circle", "blue", None, 1, 0)],       # 2 cols left
        [P("square", "red", "large", 0, 0), P("circle", "green", "small", 0, 1)],  # wrong size
        [P("square", "red", None, 2, 1), P("circle", "red", None, 1, 0)],          # diagonal: above
    ]
    out = scene_geneval.score_scenes(md, scenes)
    assert out["correct"] == [True, False, True, False, True]
    assert out["per_tag"] == {"color_attr": 0.0, "colors": 1.0, "counting": 0.0, "position": 1.0}
    assert out["overall"] == pytest.approx(0.5)
    assert scene_geneval.scene_score(scenes[0], md[0]) == 1.0
    with pytest.raises(ValueError, match="row"):
        P("square", "red", None, -1, 0)
    with pytest.raises(ValueError, match="shape"):
        scene_geneval.evaluate_scene({"tag": "colors", "include": [{"color": "red"}]}, [])
    assert P.from_dict({"shape": "circle", "row": np.int64(2), "col": 1}).row == 2


def test_wise_attribute_score_and_wiscore():
    recs = wise.read_wise(FIX / "wise.jsonl")
    objects = [
        [{"class": "apple", "color": "red"}],
        [{"class": "crystal", "color": "green"}],                  # wrong color
        [ParsedObject("square", "white", None, 0, 0), ParsedObject("circle", "red", None, 0, 0)],
    ]
    out = wise.score_wise_attributes(recs, objects)
    assert out["correct"] == [True, False, True]
    assert out["accuracy"] == pytest.approx(2 / 3)
    objects[2] = [ParsedObject("circle", "red", None, 0, 0)]        # white and square missing
    out = wise.score_wise_attributes(recs, objects)
    assert out["attribute_recall"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert out["per_category"]["cultural"]["attribute_recall"] == pytest.approx(1 / 3)
    assert wise.wiscore(2, 2, 2) == pytest.approx(1.0) and wise.wiscore(1, 0, 2) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="realism"):
        wise.wiscore(1, 3, 1)


def test_report_writer_roundtrip(tmp_path):
    import jax.numpy as jnp
    res = {"gsm8k": {"accuracy": np.float32(0.75), "correct": [True, False], "n": np.int64(2)},
           "pope": {"f1": float("nan"), "arr": jnp.arange(3)}}
    path = tmp_path / "sub" / "report.json"
    doc = report.write_report(path, res, config={"steps": 256}, drop_per_sample=True, step=10)
    back = report.read_report(path)
    assert back == doc
    assert back["results"]["gsm8k"] == {"accuracy": 0.75, "n": 2}
    assert back["results"]["pope"] == {"f1": None, "arr": [0, 1, 2]}
    assert back["meta"]["step"] == 10 and back["config"] == {"steps": 256}
    with pytest.raises(TypeError, match="cannot serialize"):
        report.write_report(tmp_path / "x.json", {"a": object()})
