"""ShapesWorld eval sets and scores: ground-truth renders score perfectly, wrong images do not;
text scorers on reference answers; r2i rows."""

import numpy as np

from mmada_jax.data import r2i
from mmada_jax.data.shapesworld import language, scenes as sc
from mmada_jax.evals import shapesworld_eval as swe
from mmada_jax.token_layout import TokenLayout


def _render(items):
    return [sc.render(sc.Scene.from_json(it["scene"]), 64) for it in items]


def test_t2i_and_wise_ground_truth_images_score_one():
    items = swe.t2i_items(3, "test", 0)
    assert sorted({it["tag"] for it in items}) == sorted(swe.TAGS)
    res = swe.score_t2i(_render(items), items)
    assert res["overall"] == 1.0, res["per_tag"]
    assert res["exact_scene"] == 1.0 and res["object_f1"] == 1.0
    blank = [np.full((64, 64, 3), 24, np.uint8)] * len(items)
    assert swe.score_t2i(blank, items)["overall"] < 0.5
    w = swe.wise_items(6, "test", 0)
    assert swe.score_wise(_render(w), w)["accuracy"] == 1.0
    assert swe.score_wise(blank[:6], w)["accuracy"] == 0.0


def test_text_scorers_on_reference_answers():
    items = swe.reasoning_items(5, "test", 0)
    perfect = [language.cot_answer(it["cot"], it["answer"]) for it in items]
    r = swe.score_reasoning(perfect, items)
    assert r["accuracy"] == 1.0 and r["format_rate"] == 1.0 and r["sound_rate"] == 1.0
    assert swe.score_reasoning(["<think> x </think> -1"] * 5, items)["accuracy"] == 0.0
    guessed = swe.score_reasoning([f"<think> 999 + 1 = 1000. </think> {it['answer']}"
                                   for it in items], items)  # right answers, unsound steps
    assert guessed["accuracy"] == 1.0 and guessed["sound_rate"] == 0.0
    v = swe.vqa_items(6, "test", 0)
    assert swe.score_vqa([language.cot_answer(i["cot"], i["answer"]) for i in v], v)[
        "accuracy"] == 1.0
    p = swe.pope_items(6, "test", 0)
    assert [i["label"] for i in p].count("yes") == 3
    res = swe.score_pope([f"<think> . </think> {i['label']}" for i in p], p)
    assert res["accuracy"] == 1.0 and res["f1"] == 1.0


def test_r2i_row_layout():
    lay = TokenLayout.custom(256, 64)
    row = r2i.r2i_row([5, 6, 7], [8, 9], lay, max_prompt_len=6, reasoning_len=5,
                      num_image_tokens=4, seq_len=20)
    t = row["tokens"].tolist()
    # [iPAD] <r2i> <bos> 5 6 7 <eos> | 8 9 <eos> <eos> <eos> | <soi> m m m m <eoi> | eos pad
    assert t[:7] == [lay.ipad, lay.r2i, lay.bos, 5, 6, 7, lay.eos]
    assert t[7:12] == [8, 9, lay.eos, lay.eos, lay.eos]
    assert t[12] == lay.soi and t[13:17] == [lay.mask] * 4 and t[17] == lay.eoi
    assert row["key_mask"].tolist() == [False] + [True] * 17 + [False] * 2
    assert row["target_mask"].nonzero()[0].tolist() == [7, 8, 9, 10, 11, 13, 14, 15, 16]
    assert int(row["image_start"]) == 13 and int(row["reasoning_start"]) == 7
    s = sc.Scene((sc.Obj("circle", "red", "small", 0, 0, "tomato"),))
    assert r2i.knowledge_reasoning(s) == ("<think> A tomato is a red circle, so draw a small red "
                                          "circle in the top left. </think>")
