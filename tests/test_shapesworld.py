"""ShapesWorld: generator, splits, text tasks checked against the scene, the parser's accuracy on
clean and degraded images, and the TFDS build without TensorFlow."""

import re
import sys

import numpy as np
import pytest

from mmada_jax.data.shapesworld import builder, knowledge, language, parser, reasoning
from mmada_jax.data.shapesworld import scenes as sc


def degrade(img, rng, sigma):
    """Gaussian blur + noise + a slight global color shift (what a small image tokenizer adds)."""
    x = parser.gaussian_blur(img.astype(np.float32), sigma)
    x = x + rng.normal(0, 6, x.shape) + rng.uniform(-12, 12, 3)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def test_generator_is_deterministic_and_in_range():
    a = [sc.random_scene(np.random.default_rng([3, i])) for i in range(50)]
    b = [sc.random_scene(np.random.default_rng([3, i])) for i in range(50)]
    assert a == b
    for s in a:
        assert 1 <= len(s.objects) <= 4
        assert len({o.cell for o in s.objects}) == len(s.objects)
    assert (sc.render(a[0], 64) == sc.render(b[0], 64)).all()
    assert sc.render(a[0], 256).shape == (256, 256, 3)


def test_splits_hold_out_combos_and_items():
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert not any(sc.is_held_out(o.color, o.shape) for o in sc.random_scene(rng, "train").objects)
        assert any(sc.is_held_out(o.color, o.shape) for o in sc.random_scene(rng, "test").objects)
        assert all(o.item not in knowledge.HELD_OUT_ITEMS
                   for o in knowledge.knowledge_scene(rng, "train").objects)
        ks = knowledge.knowledge_scene(rng, "test")
        assert all(o.item in knowledge.HELD_OUT_ITEMS for o in ks.objects)
        assert all((o.color, o.shape) == knowledge.FACTS[o.item][:2] for o in ks.objects)
        prompt = knowledge.knowledge_prompt(ks, rng)
        assert not any(c in prompt for c in sc.COLOR_NAMES if c != "orange")


def test_all_split_draws_every_combo():
    """'all' (the tokenizer's split) shows every (color, shape) pair, held-out ones included, at
    roughly equal rates; an unknown split is a named error."""
    rng = np.random.default_rng(1)
    counts = {}
    for _ in range(3000):
        for o in sc.random_scene(rng, "all").objects:
            counts[o.color, o.shape] = counts.get((o.color, o.shape), 0) + 1
    combos = [(c, s) for c in sc.COLOR_NAMES for s in sc.SHAPES]
    assert set(counts) == set(combos)
    held = [counts[cs] for cs in sc.HELD_OUT_COMBOS]
    rest = [counts[cs] for cs in combos if cs not in sc.HELD_OUT_COMBOS]
    assert 0.8 < np.mean(held) / np.mean(rest) < 1.25
    with pytest.raises(ValueError, match="split"):
        sc.random_scene(rng, "val")


def _scene_from_caption(text):
    """Independent reader of captions: every '<size> <color> <shape> ... <position>' mention."""
    objs = []
    pos_names = {sc.position_name(r, c): (r, c) for r in range(3) for c in range(3)}
    pat = (r"(small|large) (\w+) (circle|square|triangle) (?:in|at) the ([a-z ]+?)(?:,| and|\.|$)"
           r"|in the ([a-z ]+?), an? (small|large) (\w+) (circle|square|triangle)")
    for m in re.finditer(pat, text, flags=re.I):
        if m.group(1):
            size, color, shape, pos = m.group(1), m.group(2), m.group(3), m.group(4)
        else:
            pos, size, color, shape = m.group(5), m.group(6), m.group(7), m.group(8)
        r, c = pos_names[pos.strip()]
        objs.append(sc.Obj(shape, color, size, r, c))
    return sc.Scene(tuple(objs))


@pytest.mark.parametrize("style", ["varied", "plain"])
def test_captions_determine_the_scene(style):
    rng = np.random.default_rng(1)
    for _ in range(200):
        s = sc.random_scene(rng)
        assert _scene_from_caption(language.caption(s, rng, style)).key() == s.key()


def test_plain_captions_list_objects_in_reading_order_and_draw_nothing():
    rng = np.random.default_rng(3)
    for _ in range(100):
        s = sc.random_scene(rng)
        state = rng.bit_generator.state
        text = language.caption(s, rng, "plain")
        assert rng.bit_generator.state == state  # no draws: the other data stay the same
        cells = [o.cell for o in _scene_from_caption(text).objects]
        assert cells == sorted(cells) and text[0].isupper() and text.endswith(".")
    s = sc.Scene((sc.Obj("square", "blue", "large", 2, 0), sc.Obj("circle", "red", "small", 0, 1)))
    assert language.caption(s, rng, "plain") == (
        "A small red circle in the top and a large blue square in the bottom left.")
    with pytest.raises(ValueError, match="caption style 'nope'"):
        language.caption(s, rng, "nope")


def test_caption_style_reaches_every_caption_of_the_pipeline_and_eval(tmp_path):
    """config.data.shapesworld.caption_style writes the t2i captions, the captioning answers
    (pre-training and VQA 'caption' questions), the corpus's scene descriptions and the
    GenEval-style prompts; an unknown style is a named config error."""
    import ml_collections
    from mmada_jax.data import pipeline
    from mmada_jax.evals import shapesworld_eval as swe
    d = pipeline.data_config()
    d.data_dir = str(tmp_path)
    d.shapesworld.update(dict(use_tfds=False, caption_style="plain", num_train=32, num_test=8,
                              max_objects=2))
    d.image_size = 24

    def plain(text):
        scene = _scene_from_caption(text)
        return bool(scene.objects) and language.caption(scene, None, "plain") == text

    rng = np.random.default_rng(0)
    t2i = pipeline.make_component("sw_t2i", {"task": "t2i"}, d)
    cap = pipeline.make_component("sw_caption", {"task": "caption"}, d)
    src = t2i.source()
    texts = [t2i.example(src[i], rng)["caption"] for i in range(12)
             if src[i]["kind"] != "knowledge"]
    texts += [cap.example(src[i], rng)["messages"][1]["content"] for i in range(6)]
    assert texts and all(plain(t) for t in texts)
    vqa = pipeline.make_component("sw_vqa", {"task": "vqa"}, d)
    vqa.vqa_kind_weights = {"caption": 1.0}
    ans = [language.extract_answer(vqa.example(src[i], rng)["messages"][1]["content"])
           for i in range(6)]
    assert all(plain(a + ".") for a in ans)
    corpus = pipeline.make_component("sw_corpus", {"task": "corpus"}, d)
    docs = " ".join(corpus.example(i, rng)["text"] for i in range(40))
    assert "On a dark background" not in docs and "An image with" not in docs
    items = swe.t2i_items(2, "test", 0, max_objects=2, caption_style="plain")
    assert all(plain(it["prompt"]) for it in items)
    assert language.caption_style(d) == "plain"
    d.shapesworld.caption_style = "nope"
    with pytest.raises(ValueError, match="caption_style='nope'"):
        language.caption_style(d)


def test_questions_answers_match_scene_and_pope_is_balanced():
    rng = np.random.default_rng(2)
    yes = 0
    for i in range(400):
        s = sc.random_scene(rng)
        q = language.question(s, rng, ("count", "color", "position", "exists")[i % 4])
        text = language.cot_answer(q["cot"], q["answer"])
        assert text.startswith("<think> ") and language.extract_answer(text) == q["answer"]
        if q["kind"] == "count":
            m = re.match(r"How many (?:(\w+) shapes are there|(\w+)s are there|shapes)", q["question"])
            color, shape = m.group(1), m.group(2)
            n = sum((color is None or o.color == color) and (shape is None or o.shape == shape)
                    for o in s.objects)
            assert q["answer"] == str(n)
        elif q["kind"] == "color":
            pos = re.match(r"What color is the shape in the (.+)\?", q["question"]).group(1)
            assert q["answer"] == [o.color for o in s.objects
                                   if sc.position_name(o.row, o.col) == pos][0]
        elif q["kind"] == "exists":
            color, shape = re.match(r"Is there a (\w+) (\w+) in", q["question"]).groups()
            truth = any(o.color == color and o.shape == shape for o in s.objects)
            assert q["answer"] == ("yes" if truth else "no")
            yes += truth
    assert 35 <= yes <= 65  # ~50 of 100


def test_factored_vqa_cot_names_only_the_attribute_asked_about():
    """'factored' asks the same questions with the same answers as 'inventory'; its count and
    color CoTs never write a shape name next to a color (so a held-out color/shape pair of a test
    scene is never one the model must write), and their per-cell listings match the scene;
    position and existence CoTs are the inventory ones."""
    shape_re = re.compile(r"\b(circle|square|triangle)s?\b")
    color_re = re.compile(r"\b(" + "|".join(sc.COLOR_NAMES) + r")\b")
    for i in range(300):
        kind = ("count", "color", "position", "exists")[i % 4]
        s = sc.random_scene(np.random.default_rng(i), "test" if i % 2 else "train")
        a = language.question(s, np.random.default_rng(1000 + i), kind, style="inventory")
        b = language.question(s, np.random.default_rng(1000 + i), kind, style="factored")
        assert (a["question"], a["answer"]) == (b["question"], b["answer"])
        assert "I see a" in a["cot"]
        if kind in ("position", "exists"):  # the question names the pair: inventory kept
            assert b["cot"] == a["cot"]
            continue
        assert "I see a " not in b["cot"]
        cells = {sc.position_name(o.row, o.col): o for o in s.objects}
        if kind == "color" or b["cot"].startswith("The colors:"):
            assert not shape_re.search(b["cot"]), b["cot"]
            first = b["cot"].split(". ")[0] + "."
            listed = re.findall(r"(\w+) in the ([a-z ]+?)(?:,| and|\.)", first)
            assert {p: c for c, p in listed} == {p: o.color for p, o in cells.items()}
        elif b["cot"].startswith("The shapes:"):
            assert not color_re.search(b["cot"]), b["cot"]
            listed = re.findall(r"a (\w+) in the ([a-z ]+?)(?:,| and|\.)", b["cot"])
            assert {p: sh for sh, p in listed} == {p: o.shape for p, o in cells.items()}
        elif kind == "count":  # all shapes: positions only
            assert not shape_re.search(b["cot"].replace("shapes", "").replace("shape", ""))
            assert not color_re.search(b["cot"])
            assert all(p in b["cot"] for p in cells)
        text = language.cot_answer(b["cot"], b["answer"])
        assert language.extract_answer(text) == b["answer"]
    with pytest.raises(ValueError, match="style"):
        language.question(s, np.random.default_rng(0), "color", style="terse")
    with pytest.raises(ValueError, match="vqa_cot"):
        language.vqa_cot_style({"shapesworld": {"vqa_cot": "terse"}})
    assert language.vqa_cot_style({"shapesworld": {"vqa_cot": "factored"}}) == "factored"
    from mmada_jax.data.pipeline import data_config, make_component
    from mmada_jax.data.shapesworld.tasks import ShapesWorldComponent
    d = data_config()
    d.shapesworld.vqa_cot = "factored"
    assert make_component("sw_vqa", {"task": "vqa"}, d).vqa_cot == "factored"
    with pytest.raises(ValueError, match="vqa_cot"):
        ShapesWorldComponent("vqa", vqa_cot="terse")


def test_counted_vqa_cot_keeps_a_running_count_that_ends_at_the_answer():
    """'counted' asks what 'factored' asks; its counting CoT is the factored listing with a
    running count '(k)' after exactly the matching objects, in cell order, so the last number
    written is the answer (no number when the answer is 0); other kinds are the factored ones."""
    for i in range(400):
        kind = ("count", "count", "color", "position", "exists")[i % 5]
        s = sc.random_scene(np.random.default_rng(i), "test" if i % 2 else "train")
        f = language.question(s, np.random.default_rng(7 + i), kind, style="factored")
        c = language.question(s, np.random.default_rng(7 + i), kind, style="counted")
        assert (f["question"], f["answer"]) == (c["question"], c["answer"])
        if kind != "count":
            assert c["cot"] == f["cot"]
            continue
        marks = [int(k) for k in re.findall(r"\((\d)\)", c["cot"])]
        assert marks == list(range(1, int(c["answer"]) + 1)), c["cot"]
        assert re.sub(r" \(\d\)", "", c["cot"]) == f["cot"].replace(
            "I see one shape, in", "I see shapes in")
        q = c["question"]
        want = (lambda o: True) if q.startswith("How many shapes") else (
            (lambda o, w=q.split()[2]: o.color == w) if q.endswith("shapes are there?") else
            (lambda o, w=q.split()[2][:-1]: o.shape == w))
        first = c["cot"].split(". ")[0]
        for o in s.objects:  # a mark right after exactly the matching objects' cells
            at = re.search(re.escape(sc.position_name(o.row, o.col)) + r"( \(\d\))?(?:,| and|\.|$)",
                           first)
            assert at is not None and bool(at.group(1)) == want(o), (c["cot"], o)
    assert language.vqa_cot_style({"shapesworld": {"vqa_cot": "counted"}}) == "counted"


def questions_against_factored(style: str, changed=("position",), seed: int = 50):
    """`_factored_and`'s questions of the kinds in `changed`, after checking that every CoT of
    another kind is the factored one's and that each answer can be read back."""
    for s, f, q in _factored_and(style, seed):
        if q["kind"] not in changed:
            assert q["cot"] == f["cot"]
            continue
        assert language.extract_answer(language.cot_answer(q["cot"], q["answer"])) == q["answer"]
        yield s, f, q
    assert language.vqa_cot_style({"shapesworld": {"vqa_cot": style}}) == style


def test_asked_last_vqa_cot_lists_the_asked_object_last():
    """'asked_last' asks what 'factored' asks; its position CoT lists every object of the scene
    once with its own cell (the others in cell order, the asked one last), then concludes with
    the asked object's cell, the answer; other kinds are the factored ones."""
    obj_re = re.compile(r"an? (small|large) (\w+) (circle|square|triangle) in the ([a-z ]+?)"
                        r"(?:,| and|\.)")
    seen_multi = 0
    for s, _, a in questions_against_factored("asked_last"):
        listing, concl = a["cot"].split(". The ")
        listed = obj_re.findall(listing + ".")
        want = sorted((o.size, o.color, o.shape, sc.position_name(o.row, o.col))
                      for o in s.objects)
        assert sorted(listed) == want, a["cot"]
        size, color, shape = a["question"][len("Where is the "):-1].split()
        assert listed[-1] == (size, color, shape, a["answer"]), a["cot"]
        cells = [sc.position_name(o.row, o.col) for o in sorted(s.objects, key=lambda o: o.cell)]
        assert [x[3] for x in listed[:-1]] == [c for c in cells if c != a["answer"]]
        assert concl == f"{size} {color} {shape} is in the {a['answer']}."
        seen_multi += len(s.objects) > 1 and listed != sorted(listed, key=lambda x: cells.index(
            x[3]))
    assert seen_multi > 10  # the order differs from the inventory's in many scenes


def test_color_first_vqa_cot_writes_no_color_shape_pair():
    """'color_first' asks what 'factored' asks. Its position CoT lists exactly the scene's
    objects of the asked color, by size, shape and cell in cell order, then concludes with the
    asked object's size, shape and cell, the answer; its existence CoT is the factored one
    without the inventory. Neither writes a color/shape pair (a test scene's held-out pair is
    never written, even when the question names it)."""
    entry_re = re.compile(r"an? (small|large) (circle|square|triangle) in the ([a-z ]+?)"
                          r"(?:,| and|\.)")
    pair_re = re.compile(r"\b(" + "|".join(sc.COLOR_NAMES) + r") (circle|square|triangle)")
    seen_multi, exists = 0, 0
    for s, f, c in questions_against_factored("color_first", ("position", "exists"), seed=70):
        assert pair_re.findall(c["cot"]) == [], c["cot"]
        if c["kind"] == "exists":
            head, rest = f["cot"].split(". The ", 1)
            assert head.startswith("I see ") and c["cot"] == "The " + rest
            exists += 1
            continue
        size, color, shape = c["question"][len("Where is the "):-1].split()
        head, concl = c["cot"].split(". The ")
        assert head.startswith(f"The {color} shapes: "), c["cot"]
        listed = entry_re.findall(head + ".")
        want = [(o.size, o.shape, sc.position_name(o.row, o.col))
                for o in sorted(s.objects, key=lambda o: o.cell) if o.color == color]
        assert listed == want, c["cot"]
        assert (size, shape, c["answer"]) in listed
        assert concl == f"{size} {shape} is in the {c['answer']}."
        seen_multi += len(listed) > 1
    assert seen_multi > 5 and exists > 50  # scenes with two objects of the asked color


def test_training_existence_questions_never_ask_about_held_out_pairs():
    """A held-out (color, shape) pair is absent from every training scene, so a training question
    about it could only be answered "no": the training component never asks one; the test split
    (and `question` without avoid_pairs) still does."""
    from mmada_jax.data.shapesworld.tasks import ShapesWorldComponent
    pair_re = re.compile(r"Is there an? (\w+) (\w+) in the image\?")
    asked = {"train": set(), "test": set()}
    for split in asked:
        comp = ShapesWorldComponent("vqa", split=split, use_tfds=False, image_size=32,
                                    num_train=64, num_test=64, knowledge_fraction=0.0,
                                    vqa_cot="counted")
        src = comp.source()
        rng = np.random.default_rng(0)
        for j in range(600):
            ex = comp.example(src[j % len(src)], rng)
            m = pair_re.match(ex["messages"][0]["content"])
            if m:
                asked[split].add((m.group(1), m.group(2)))
    assert len(asked["train"]) >= 15  # of the 20 pairs a training scene can hold
    assert not asked["train"] & sc.HELD_OUT_COMBOS, asked["train"] & sc.HELD_OUT_COMBOS
    assert asked["test"] & sc.HELD_OUT_COMBOS
    rng = np.random.default_rng(3)
    s = sc.random_scene(rng, "train")
    plain = {language.question(s, rng, "exists")["question"] for _ in range(400)}
    assert any(pair_re.match(q).groups() in sc.HELD_OUT_COMBOS for q in plain)


def test_arithmetic_answers_are_right_and_extractable():
    rng = np.random.default_rng(3)
    for _ in range(300):
        p = reasoning.arithmetic_problem(rng)
        # independent evaluation from the question text
        v = int(re.match(r"\w+ has (\d+)", p["question"]).group(1))
        for m in re.finditer(r"finds (\d+) more|gives away (\d+)|becomes (\d+) times", p["question"]):
            a, s, k = m.groups()
            v = v + int(a) if a else v - int(s) if s else v * int(k)
        assert v >= 0 and p["answer"] == str(v)
        assert reasoning.extract_int(language.cot_answer(p["cot"], p["answer"])) == v
    assert reasoning.extract_int("<think> 3 + 4 = 7 </think> The answer is 7.") == 7
    assert reasoning.extract_int("no number") is None


def test_cot_styles_give_the_same_problem_and_valid_equations():
    """'equations' is 'full' without the closing restatement; every equation is true; the corpus
    writes its worked problems in the style it is given; an unknown style is a named error."""
    for seed in range(50):
        full = reasoning.arithmetic_problem(np.random.default_rng(seed), cot="full")
        eq = reasoning.arithmetic_problem(np.random.default_rng(seed), cot="equations")
        assert eq["question"] == full["question"] and eq["answer"] == full["answer"]
        assert full["cot"].startswith(eq["cot"]) and " So " in full["cot"]
        assert " So " not in eq["cot"]
        for a, op, b, c in re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)\.", eq["cot"]):
            assert int(c) == {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert eq["cot"].split(" = ")[-1].rstrip(".") == eq["answer"]
    docs = " ".join(reasoning.corpus_document(np.random.default_rng(s), cot="equations")
                    for s in range(40))
    assert " = " in docs and "So " not in docs
    with pytest.raises(ValueError, match="cot"):
        reasoning.arithmetic_problem(np.random.default_rng(0), cot="prose")
    with pytest.raises(ValueError, match="arith_cot"):
        reasoning.cot_style({"shapesworld": {"arith_cot": "prose"}})


def test_corpus_contains_facts():
    rng = np.random.default_rng(4)
    text = " ".join(reasoning.corpus_document(rng) for _ in range(200))
    assert sum(item in text for item in knowledge.ITEMS) >= len(knowledge.ITEMS) - 2


@pytest.mark.parametrize("size,sigma", [(64, 0.0), (64, 1.2), (32, 0.7), (128, 2.0)])
def test_parser_accuracy_on_500_scenes(size, sigma):
    rng = np.random.default_rng(size + int(sigma * 10))
    n, ok = 500 if (size, sigma) in ((64, 0.0), (64, 1.2)) else 150, 0
    for i in range(n):
        s = sc.random_scene(rng, "test" if i % 3 == 0 else "train")
        img = sc.render(s, size)
        if sigma:
            img = degrade(img, rng, sigma)
        ok += parser.scene_correct(parser.parse_scene(img), s)
    assert ok / n >= 0.99, (ok, n)


def test_parser_reads_float_images_and_scores():
    rng = np.random.default_rng(5)
    s = sc.random_scene(rng, num_objects=3)
    img = sc.render(s, 64).astype(np.float32) / 127.5 - 1
    assert parser.parse_scene(img).key() == s.key()
    assert parser.image_reward(img, s) == 1.0
    empty = sc.render(sc.Scene(()), 64)
    assert parser.parse_scene(empty).objects == ()
    sc_ = parser.score(sc.Scene(s.objects[:2]), s)
    assert sc_["exact"] == 0.0 and sc_["count"] == 0.0 and sc_["object_f1"] == pytest.approx(0.8)


def test_tfds_build_without_tensorflow(tmp_path):
    b = builder.make_builder(str(tmp_path), image_size=32, num_train=12, num_test=4)
    with pytest.raises(FileNotFoundError, match="Build it with"):
        builder.ShapesWorldSource(str(tmp_path), "train", image_size=32, num_train=12, num_test=4)
    builder.ensure_built(b)
    assert "tensorflow" not in sys.modules
    src = builder.ShapesWorldSource(str(tmp_path), "train", image_size=32, num_train=12, num_test=4)
    assert len(src) == 12
    from mmada_jax.data import images
    for i in range(12):
        r = src[i]
        want = builder.record(0, "train", r["index"], 32, 0.2)
        assert r["scene"] == want["scene"] and r["kind"] == want["kind"]
        assert (images.decode(r["image"]) == sc.render(sc.Scene.from_json(r["scene"]), 32)).all()
    # reused, not rebuilt
    mtime = (tmp_path).stat().st_mtime
    builder.ensure_built(builder.make_builder(str(tmp_path), image_size=32, num_train=12, num_test=4))
    assert (tmp_path).stat().st_mtime == mtime


def test_max_objects_bounds_every_scene_source():
    from mmada_jax.data.shapesworld import tasks
    from mmada_jax.evals import shapesworld_eval as swe
    rng = np.random.default_rng(7)
    counts = [len(sc.random_scene(rng, split, max_objects=2).objects)
              for split in ("train", "test", "all") for _ in range(100)]
    assert set(counts) == {1, 2}
    assert {len(knowledge.knowledge_scene(rng, "train", 1).objects) for _ in range(30)} == {1}
    for m in (0, 5):
        with pytest.raises(ValueError, match="max_objects"):
            sc.random_scene(rng, max_objects=m)
    recs = tasks.ProceduralScenes("train", 40, 32, 0, 0.3, max_objects=2)
    assert max(len(sc.Scene.from_json(recs[i]["scene"]).objects) for i in range(40)) == 2
    # the default name is unchanged (existing builds stay valid); other values get a suffix
    assert builder.config_name(32, 10, 5, 0, 0.2) == "s32_n10_5_seed0_k20"
    assert builder.config_name(32, 10, 5, 0, 0.2, 2) == "s32_n10_5_seed0_k20_m2"
    items = swe.t2i_items(4, "test", 0, max_objects=2)
    assert all(len(sc.Scene.from_json(it["scene"]).objects) <= 2 for it in items)
    assert {it["metadata"]["include"][0]["count"] for it in items if it["tag"] == "counting"} == {2}
    for it in swe.vqa_items(20, "test", 0, max_objects=2) + swe.pope_items(10, "test", 0, 2):
        assert len(sc.Scene.from_json(it["scene"]).objects) <= 2
    with pytest.raises(ValueError, match="max_objects"):
        swe.t2i_item("counting", rng, "test", max_objects=1)


def _factored_and(style: str, seed: int, n: int = 400):
    """(scene, factored question, `style` question) for n scenes of both splits, mostly counts;
    both styles must ask the same question with the same answer (same draws)."""
    for i in range(n):
        kind = ("count", "count", "color", "position", "exists")[i % 5]
        s = sc.random_scene(np.random.default_rng(i), "test" if i % 2 else "train")
        f = language.question(s, np.random.default_rng(seed + i), kind, style="factored")
        g = language.question(s, np.random.default_rng(seed + i), kind, style=style)
        assert (f["question"], f["answer"]) == (g["question"], g["answer"])
        yield s, f, g


def test_matched_vqa_cot_counts_shapes_in_the_listings_own_word():
    """'matched' asks what 'factored' asks with the same listings; only a shape count's counting
    sentence differs: it names the shape in the singular word its listing uses ("Counting the
    circle shapes"), and the answer is the number of listing entries with that word."""
    changed = 0
    for _, f, m in _factored_and(style="matched", seed=3):
        shape = re.fullmatch(r"How many (circle|square|triangle)s are there\?", f["question"])
        if shape is None:
            assert m["cot"] == f["cot"]
            continue
        word = shape.group(1)
        listing_f, count_f = f["cot"].split(". Counting ")
        listing_m, count_m = m["cot"].split(". Counting ")
        assert listing_m == listing_f and listing_m.startswith("The shapes:")
        assert count_f.startswith(f"the {word}s:") and count_m.startswith(f"the {word} shapes:")
        assert count_m.split(":")[1] == count_f.split(":")[1]
        n = len(re.findall(rf"\ba {word} in the\b", listing_m))
        assert int(m["answer"]) == n
        changed += 1
    assert changed >= 30
    with pytest.raises(ValueError, match="vqa_cot"):
        language.vqa_cot_style({"shapesworld": {"vqa_cot": "match"}})
    assert language.vqa_cot_style({"shapesworld": {"vqa_cot": "matched"}}) == "matched"


def test_filtered_vqa_cot_lists_only_the_counted_shapes():
    """'filtered' asks what 'factored' asks; a color or shape count's listing names exactly the
    cells of the matching objects (checked against the scene), and the answer is its length."""
    seen = set()
    for s, f, g in _factored_and(style="filtered", seed=7):
        m_color = re.fullmatch(r"How many (\w+) shapes are there\?", f["question"])
        m_shape = re.fullmatch(r"How many (circle|square|triangle)s are there\?", f["question"])
        if m_color is None and m_shape is None:
            assert g["cot"] == f["cot"]
            continue
        if m_color:
            match = [o for o in s.objects if o.color == m_color.group(1)]
        else:
            match = [o for o in s.objects if o.shape == m_shape.group(1)]
        listing, counting = g["cot"].split(". Counting ")
        assert counting == f["cot"].split(". Counting ")[1]
        cells = re.findall(r"the ((?:top|middle|bottom|center)(?: (?:left|right))?)\b", listing)
        want = [sc.position_name(o.row, o.col) for o in sorted(match, key=lambda o: o.cell)]
        assert cells == want, (listing, want)
        assert int(g["answer"]) == len(want)
        form = ("none" if not want else "one" if len(want) == 1 else "many")
        assert listing.startswith({"none": "I see no ", "one": "I see one ",
                                   "many": "I see "}[form])
        seen.add((form, "color" if m_color else "shape"))
    assert len(seen) == 6, seen  # every listing form for both kinds of count
    assert language.vqa_cot_style({"shapesworld": {"vqa_cot": "filtered"}}) == "filtered"


@pytest.mark.parametrize("name,style", [("sw_gpu_matched.py", "matched"),
                                        ("sw_gpu_filtered.py", "filtered"),
                                        ("sw_gpu_asked_last.py", "asked_last"),
                                        ("sw_gpu_inventory_positions.py", "factored")])
def test_cot_style_experiments_set_their_style_in_every_stage(tmp_path, name, style):
    """The experiment files load and switch the VQA CoT for all three stages (pretraining has no
    VQA rows, but the stages' data configs stay one run's), leaving the gpu default's readback
    rows in place."""
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    dc = load_config_file(os.path.join(demo.EXPERIMENTS, name))
    cfgs = {s: demo._stage_config(s, dc.variant, str(tmp_path), dc) for s in demo.STAGES}
    assert dc.variant == "gpu"
    assert {s: language.vqa_cot_style(c.data) for s, c in cfgs.items()} == dict.fromkeys(
        demo.STAGES, style)
    assert cfgs["sft"].data.readback_prob == 0.25


def test_add_stage_override_appends_per_stage():
    from mmada_jax import demo
    dc = demo.add_stage_override(demo.demo_config("gpu"), "optim.lr=1e-3", ("sft",))
    dc = demo.add_stage_override(dc, "train.seed=4")
    assert dict(dc.stage_overrides) == dict(pretrain="train.seed=4", grpo="train.seed=4",
                                            sft="optim.lr=1e-3;train.seed=4")


def test_vqa_cot_styles_are_a_registry_a_fork_can_extend():
    """A new style is a registered subclass; `question` and the config check pick it up by name,
    its questions and answers are the base style's, and names are unique."""
    from mmada_jax.data.shapesworld import vqa_cot

    @vqa_cot.register_vqa_cot("test_numbered")
    class Numbered(vqa_cot.FactoredCot):
        def count_noun(self, attr, plural, singular):
            return f"{plural} one by one"

    try:
        assert language.vqa_cot_style({"shapesworld": {"vqa_cot": "test_numbered"}})
        for i in range(60):
            s = sc.random_scene(np.random.default_rng(i))
            f = language.question(s, np.random.default_rng(i), "count", style="factored")
            g = language.question(s, np.random.default_rng(i), "count", style="test_numbered")
            assert (g["question"], g["answer"]) == (f["question"], f["answer"])
            head, tail = f["cot"].split(" Counting the ")
            noun, rest = tail.split(":", 1)
            assert g["cot"] == f"{head} Counting the {noun} one by one:{rest}"
        with pytest.raises(ValueError, match="already registered"):
            vqa_cot.register_vqa_cot("factored")(vqa_cot.FactoredCot)
    finally:
        del vqa_cot.VQA_COTS["test_numbered"]
    with pytest.raises(ValueError, match="test_numbered.*unknown"):
        language.question(sc.random_scene(np.random.default_rng(0)), np.random.default_rng(0),
                          "count", style="test_numbered")


def _draws(n, seed=0, **weights):
    """(question kind, count target) of n training questions drawn with `weights`."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = language.question(sc.random_scene(rng), rng, style="factored", **weights)
        target = None
        if q["kind"] == "count":
            target = ("all" if q["question"].startswith("How many shapes") else
                      "color" if q["question"].endswith(" shapes are there?") else "shape")
        out.append((q["kind"], target))
    return out


def test_question_weights_set_how_often_each_kind_and_count_target_is_asked():
    """Drawn shares match the weights within 4 binomial standard errors; a zero weight is never
    drawn; without weights the draws are the uniform pick's, question for question."""
    kinds = dict(count=0.5, color=0.1, position=0.25, exists=0.15, caption=0.0)
    targets = dict(all=0.1, color=0.3, shape=0.6)
    n = 4000
    draws = _draws(n, kind_weights=kinds, count_weights=targets)
    for k, w in kinds.items():
        share = sum(d[0] == k for d in draws) / n
        assert abs(share - w) <= 4 * np.sqrt(w * (1 - w) / n) + 1e-9, (k, share, w)
    counts = [t for k, t in draws if k == "count"]
    for t, w in targets.items():
        share = counts.count(t) / len(counts)
        assert abs(share - w) <= 4 * np.sqrt(w * (1 - w) / len(counts)), (t, share, w)
    # empty weights are the uniform pick: the same questions as passing none
    _assert_same_questions_as_without(3, 200, kind_weights={}, count_weights=None)


def _assert_same_questions_as_without(seed, n, **kwargs):
    """`language.question(..., **kwargs)` asks, question for question, what it asks without."""
    rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(n):
        s = sc.random_scene(rng_a)
        assert s == sc.random_scene(rng_b)
        assert (language.question(s, rng_a, style="factored") ==
                language.question(s, rng_b, style="factored", **kwargs))


def _count_answers(n, seed, share, target):
    """Answers of n one-`target` count questions (target 'color' or 'shape'), with the scenes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = sc.random_scene(rng)
        q = language.question(s, rng, kind="count", style="factored",
                              count_weights={target: 1.0}, count_repeats=share)
        out.append((s, q))
    return out


def test_count_repeats_ask_about_a_repeated_color_or_shape_when_the_scene_has_one():
    """share 1: every one-color / one-shape count on a scene holding a repeated color / shape
    asks about one of those (answer >= 2, counted independently here), others as before;
    share 0.5: about half of the eligible questions do (with the uniform draw's own repeats
    counted in); share 0: the same questions as without the argument, question for question."""
    for target, attr in (("color", "color"), ("shape", "shape")):
        for s, q in _count_answers(400, 1, 1.0, target):
            values = [getattr(o, attr) for o in s.objects]
            word = q["question"].split()[2]  # "How many red shapes" / "How many circles"
            asked = word if target == "color" else word[:-1]
            assert int(q["answer"]) == sum(v == asked for v in values)
            if any(values.count(v) >= 2 for v in values):
                assert values.count(asked) >= 2, (q, values)
        n = 3000
        eligible = [(s, q) for s, q in _count_answers(n, 2, 0.5, target)
                    if any(c >= 2 for c in np.unique([getattr(o, attr) for o in s.objects],
                                                     return_counts=True)[1])]
        base = [(s, q) for s, q in _count_answers(n, 2, 0.0, target)
                if any(c >= 2 for c in np.unique([getattr(o, attr) for o in s.objects],
                                                 return_counts=True)[1])]
        p0 = np.mean([int(q["answer"]) >= 2 for _, q in base])
        p = np.mean([int(q["answer"]) >= 2 for _, q in eligible])
        want = 0.5 + 0.5 * p0  # the uniform half still lands on a repeated value sometimes
        assert abs(p - want) <= 4 * np.sqrt(want * (1 - want) / len(eligible)), (target, p, want)
    _assert_same_questions_as_without(5, 300, count_repeats=0.0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"count_repeats: must be a number in \[0, 1\]"):
        language.question(sc.random_scene(rng), rng, kind="count", count_repeats=1.5)
    with pytest.raises(ValueError, match="vqa_count_repeats: must be a number"):
        language.count_repeats({"shapesworld": {"vqa_count_repeats": "often"}})
    assert language.count_repeats({"shapesworld": {}}) == 0.0


def test_question_weights_reject_bad_config_by_name():
    cfg = lambda **sw: {"shapesworld": sw}  # noqa: E731
    assert language.question_weights(cfg()) == ({}, {})
    with pytest.raises(ValueError, match=r"vqa_kind_weights: unknown \['counting'\]"):
        language.question_weights(cfg(vqa_kind_weights={"counting": 1.0}))
    with pytest.raises(ValueError, match="vqa_count_weights: weights must be >= 0"):
        language.question_weights(cfg(vqa_count_weights={"shape": -1.0}))
    with pytest.raises(ValueError, match="vqa_count_weights: .* sum to 0"):
        language.question_weights(cfg(vqa_count_weights={"shape": 0.0}))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        language.question_weights(cfg(vqa_kind_weights={"count": float("nan")}))
    with pytest.raises(ValueError, match="vqa_kind_weights: weights must be numbers"):
        language.question_weights(cfg(vqa_kind_weights={"count": "many"}))


def test_gpu_default_weights_fine_tuning_questions_and_counts_experiment_varies_them(tmp_path):
    """The gpu variant weights the SFT and UniGRPO stages' VQA questions (count-heavy, runs 12
    and 14), writes 'color_first' CoTs (the cpu variant 'factored'), keeps its readback rows,
    and its components draw with those weights; the cpu variant stays uniform;
    `sw_gpu_counts.py` names the default, 'position' and 'uniform'."""
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    from mmada_jax.data import pipeline

    def weights(dc, stage, variant="gpu"):
        return language.question_weights(
            demo._stage_config(stage, variant, str(tmp_path), dc).data)

    dc = demo.demo_config("gpu")
    cfgs = {s: demo._stage_config(s, "gpu", str(tmp_path), dc) for s in demo.STAGES}
    assert language.question_weights(cfgs["pretrain"].data) == ({}, {})
    for stage in ("sft", "grpo"):
        kinds, targets = language.question_weights(cfgs[stage].data)
        assert kinds["count"] == 0.4 and kinds["position"] == 0.15 and targets["shape"] == 0.45
        assert language.vqa_cot_style(cfgs[stage].data) == "color_first"
    assert cfgs["sft"].data.readback_prob == 0.25
    cpu = demo.demo_config("cpu")
    assert language.vqa_cot_style(
        demo._stage_config("sft", "cpu", str(tmp_path), cpu).data) == "factored"
    comp = pipeline.make_component("sw_vqa", {"task": "vqa"}, cfgs["sft"].data)
    assert comp.vqa_kind_weights == language.question_weights(cfgs["sft"].data)[0]
    assert comp.vqa_count_weights["shape"] == 0.45
    assert weights(demo.demo_config("cpu"), "sft", "cpu") == ({}, {})

    path = os.path.join(demo.EXPERIMENTS, "sw_gpu_counts.py")
    for stage in demo.STAGES:
        assert weights(load_config_file(path), stage) == weights(dc, stage)
    kinds, _ = weights(load_config_file(path, "position"), "sft")
    assert kinds["position"] == 0.2 and kinds["count"] == 0.4 and kinds["caption"] == 0.1
    uniform = load_config_file(path, "uniform")
    for stage in demo.STAGES:
        assert weights(uniform, stage) == ({}, {})
    comp = pipeline.make_component(
        "sw_vqa", {"task": "vqa"}, demo._stage_config("sft", "gpu", str(tmp_path), uniform).data)
    assert comp.vqa_kind_weights == {} and comp.vqa_count_weights == {}
    assert comp.vqa_count_repeats == 0.0
    repeats = load_config_file(path, "repeats")
    for stage in demo.STAGES:
        assert weights(repeats, stage) == weights(dc, stage)
        data = demo._stage_config(stage, "gpu", str(tmp_path), repeats).data
        assert language.count_repeats(data) == (0.0 if stage == "pretrain" else 0.6)
    comp = pipeline.make_component(
        "sw_vqa", {"task": "vqa"}, demo._stage_config("sft", "gpu", str(tmp_path), repeats).data)
    assert comp.vqa_count_repeats == 0.6
    with pytest.raises(ValueError, match="unknown argument 'nope'"):
        load_config_file(path, "nope")


def test_steady_rate_ignores_the_compile_interval_and_one_slow_interval():
    from mmada_jax.demo import steady_rate
    hist = [dict(steps_per_s=2.0), dict(steps_per_s=28.0), dict(steps_per_s=22.3),
            dict(steps_per_s=27.5)]
    assert steady_rate(hist) == 27.5  # median of the three after the first
    assert steady_rate(hist[:1]) == 2.0  # a single interval is all there is
    assert steady_rate([]) == 1.0 and steady_rate([dict(loss=1.0)]) == 1.0


def test_cpu_demo_configs_bind_images_and_gpu_configs_keep_the_release_setup(tmp_path):
    """The cpu variant (make demo) uses learned absolute positions, plain captions, half fully
    masked image rows and a 3x t2i weight in pre-training, and UniGRPO on t2i prompts too; the
    gpu variant keeps the release's architecture, varied captions and cosine masking."""
    from mmada_jax import demo
    from mmada_jax.data.shapesworld.language import caption_style
    cpu = {s: demo._stage_config(s, "cpu", str(tmp_path), demo.demo_config("cpu"))
           for s in demo.STAGES}
    gpu = {s: demo._stage_config(s, "gpu", str(tmp_path), demo.demo_config("gpu"))
           for s in demo.STAGES}
    for s in demo.STAGES:
        assert cpu[s].model.abs_pos_embed and caption_style(cpu[s].data) == "plain"
        assert cpu[s].tasks.t2i.schedule == "half_full"
        assert not gpu[s].model.abs_pos_embed and caption_style(gpu[s].data) == "varied"
        assert gpu[s].tasks.t2i.schedule == "cosine" and gpu[s].tasks.t2i.coeff == 1.0
    assert cpu["pretrain"].tasks.t2i.coeff == 3.0 and cpu["sft"].tasks.t2i.coeff == 1.0
    assert cpu["sft"].tasks.r2i.schedule == "half_full" and gpu["sft"].tasks.r2i.schedule == "cosine"
    assert cpu["grpo"].rl.tasks.t2i.prompts > 0


def test_every_variant_heldout_reward_eval_names_its_own_tasks(tmp_path):
    """The UniGRPO stage's held-out reward eval is valid for each demo variant's tasks (the
    trainer checks it at start; a bad name would otherwise fail a 20-minute demo at its end), and
    the cpu demo's covers 192 reasoning prompts: 64 could not resolve the stage's gain on v38."""
    from mmada_jax import demo
    from mmada_jax.rl.heldout import check_heldout_config, heldout_tasks
    from mmada_jax.rl.trainer import stage_tasks
    for variant in ("ci", "cpu", "gpu"):
        rl = demo._stage_config("grpo", variant, str(tmp_path), demo.demo_config(variant)).rl
        tasks = stage_tasks(rl)
        check_heldout_config(rl, tasks)
        assert int(rl.heldout_chunks) > 0
        if variant == "cpu":
            assert heldout_tasks(rl, tasks) == ["reasoning"]
            assert int(rl.heldout_chunks) * int(rl.tasks.reasoning.prompts) == 192
