"""Answer extraction and text-benchmark scorers (GSM8K, MMLU, POPE, VQAv2) on fixture files."""

import itertools
import json
import pathlib

import pytest

from mmada_jax.evals import answers, gsm8k, io, mmlu, pope, vqav2

FIX = pathlib.Path(__file__).parent / "fixtures" / "evals"


# ----------------------------------------------------------------------------- answers
@pytest.mark.parametrize("s,want", [
    ("1,000", 1000.0), ("$5", 5.0), ("5.0", 5.0), ("-3", -3.0), ("50%", 50.0), ("3/4", 0.75),
    ("\\frac{3}{4}", 0.75), ("7.", 7.0), ("5 dollars", 5.0), ("$1,234.50", 1234.5), (".5", 0.5),
    ("abc", None), ("1,00", None), ("the answer 5", None), ("", None), ("1/0", None)])
def test_parse_number(s, want):
    assert answers.parse_number(s) == want


def test_final_answer_extraction_order():
    assert answers.extract_final_answer("<think>answer is 3</think> so \\boxed{\\frac{1}{2}}") == \
        "\\frac{1}{2}"
    assert answers.extract_final_answer("\\boxed{a{b}c} then \\boxed{x^{2}}") == "x^{2}"
    assert answers.extract_final_answer("work... #### 72") == "72"
    assert answers.extract_final_answer("so the answer is: Paris.") == "Paris."
    assert answers.extract_final_answer("<think>a</think>") == ""
    assert answers.answers_match("There are 1,000 apples", "1000")
    assert answers.last_number("5 - 3 is 2, not 10 - 3") == "3"
    assert answers.last_number("it costs $ 1,200.50") == "$1,200.50"
    assert answers.last_number("x = -7") == "-7"
    assert not answers.answers_match("no", "yes") and not answers.answers_match("", "")


# ----------------------------------------------------------------------------- GSM8K
def test_gsm8k_reader_and_scorer():
    recs = gsm8k.read_gsm8k(FIX / "gsm8k.jsonl")
    assert [r["reference"] for r in recs] == ["72", "12000", "10", "-3"]
    responses = [
        "<think>48/2=24, 48+24=72</think> Natalia sold 72 clips.",   # after </think>, last number
        "12 months * $1,000 = $12,000",                                 # commas and currency
        "<think>maybe 10</think> \\boxed{12}",                          # boxed wins: wrong
        "7 - 10 = -3. #### -3",
    ]
    out = gsm8k.score_gsm8k(responses, [r["reference"] for r in recs])
    assert out["correct"] == [True, True, False, True]
    assert out["accuracy"] == 0.75 and out["predictions"][2] == "12"
    assert gsm8k.gsm8k_prediction("no numbers here") is None


def test_reader_errors_name_file_line_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q"}\n')
    with pytest.raises(io.EvalDataError, match=r"bad.jsonl:2: missing field\(s\) \['answer'\]"):
        gsm8k.read_gsm8k(bad)
    bad.write_text('{"question": "q", "answer": "no hashes"}\n')
    with pytest.raises(io.EvalDataError, match="record 1, field 'answer'"):
        gsm8k.read_gsm8k(bad)
    bad.write_text('{"question": "q",\n')
    with pytest.raises(io.EvalDataError, match="bad.jsonl:1: invalid JSON"):
        io.read_jsonl(bad)


def test_gzipped_jsonl_is_read_where_the_plain_file_is_named(tmp_path):
    import gzip
    rows = [{"task": "vqa", "correct": True}, {"task": "reasoning", "answer": "\u00e9 7"}]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    plain = tmp_path / "answers.jsonl"
    with gzip.open(tmp_path / "answers.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    assert io.resolve_text_path(plain) == str(plain) + ".gz"
    assert io.read_jsonl(plain) == rows                       # only the .gz exists
    assert io.read_jsonl(str(plain) + ".gz") == rows          # named directly
    from mmada_jax.pipeline_report import read_jsonl as report_rows
    assert report_rows(str(plain)) == rows
    assert report_rows(str(tmp_path / "none.jsonl")) == []
    plain.write_text(json.dumps(rows[0]) + "\n")             # the plain file wins when both exist
    assert io.read_jsonl(plain) == rows[:1]
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        io.read_jsonl(tmp_path / "missing.jsonl")
    with gzip.open(tmp_path / "bad.jsonl.gz", "wt") as f:
        f.write('{"a": 1}\n[1]\n')
    with pytest.raises(io.EvalDataError, match=r"bad.jsonl.gz:2: expected a JSON object"):
        io.read_jsonl(tmp_path / "bad.jsonl")


# ----------------------------------------------------------------------------- MMLU
@pytest.mark.parametrize("text,want", [
    ("B", "B"), ("(C)", "C"), ("D. Paris", "D"), ("The answer is (A).", "A"),
    ("<think>maybe A</think> Answer: B", "B"), ("I pick option D", "D"), ("\\boxed{C}", "C"),
    ("**C**", "C"), ("the answer is a cat", None), ("A cat sat", None), ("none of these", None),
    ("Among them (B) and (C) are wrong; (D)", "D"), ("The answer is E", None)])
def test_extract_choice(text, want):
    assert mmlu.extract_choice(text) == want


def test_mmlu_scores_per_subject():
    recs = mmlu.read_mmlu(FIX / "mmlu.jsonl")
    assert [r["answer"] for r in recs] == ["B", "C", "A", "C", "A"]
    out = mmlu.score_mmlu(["The answer is B", "C", "Rome", "(C)", "The answer is (B)"], recs)
    assert out["correct"] == [True, True, False, True, False]
    assert out["per_subject"] == {"elementary_mathematics": 1.0, "geography": 0.0, "physics": 0.5}
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["macro_accuracy"] == pytest.approx(0.5) and out["unparsed"] == 1
    csv_recs = mmlu.read_mmlu(FIX / "high_school_physics_test.csv")
    assert [(r["subject"], r["answer"]) for r in csv_recs] == [("high_school_physics", "B")] * 2
    assert "B. g" in mmlu.format_mmlu_prompt(csv_recs[0])


# ----------------------------------------------------------------------------- POPE
def test_pope_extraction_official_rule():
    assert pope.extract_yes_no("Yes, there is a dog.") == "yes"
    assert pope.extract_yes_no("No, there is not.") == "no"
    assert pope.extract_yes_no("There is not a car in the image.") == "no"
    assert pope.extract_yes_no("Yes. No dogs elsewhere.") == "yes"  # first sentence only
    assert pope.extract_yes_no("<think>no idea</think> Yes") == "yes"
    assert pope.extract_yes_no("I can't tell", strict=True) is None
    assert pope.extract_yes_no("  No.", strict=True) == "no"


def test_pope_metrics_against_hand_counts():
    recs = pope.read_pope(FIX / "pope.jsonl")
    responses = ["Yes", "Yes, there is", "No", "No", "Yes", "No", "Yes", "Yes"]
    out = pope.score_pope(responses, recs)
    # labels y n y n y n y n ; preds y y n n y n y y -> TP 3, FP 2, TN 2, FN 1
    tp, fp, tn, fn = 3, 2, 2, 1
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert out["accuracy"] == pytest.approx((tp + tn) / 8)
    assert out["precision"] == pytest.approx(p) and out["recall"] == pytest.approx(r)
    assert out["f1"] == pytest.approx(2 * p * r / (p + r))
    assert out["yes_ratio"] == pytest.approx(5 / 8)
    assert out["per_category"]["random"]["accuracy"] == pytest.approx(2 / 4)
    assert out["per_category"]["adversarial"]["recall"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- VQAv2
def _ref_vqa_acc(pred, gts):
    """Independent reference: mean over the 10-choose-9 subsets of min(1, #matches / 3)."""
    return sum(min(1.0, sum(a == pred for a in sub) / 3)
               for sub in itertools.combinations(gts, len(gts) - 1)) / len(gts)


@pytest.mark.parametrize("raw,want", [
    ("Two", "2"), ("the laptop.", "laptop"), ("dont know", "don't know"), ("a dog's bone", "dog's bone"),
    ("yes!", "yes"), ("1,000", "1000"), ("3.5", "3.5"), ("black-and-white", "black and white"),
    ("  none\n", "0"), ("left - right", "left right")])
def test_vqa_normalization(raw, want):
    assert vqav2.normalize_answer(raw) == want


def test_vqa_accuracy_matches_subset_definition():
    recs = vqav2.read_vqav2(FIX / "vqav2.jsonl")
    norm = [[vqav2.normalize_answer(a) for a in r["answers"]] for r in recs]
    preds = ["two", "Yes.", "laptop", "playing frisbee"]
    for p, gts in zip(preds, norm):
        assert vqav2.vqa_accuracy(p, gts) == pytest.approx(_ref_vqa_acc(vqav2.normalize_answer(p), gts))
    out = vqav2.score_vqav2(["The answer is two", "yes", "Laptop", "<think>hm</think>playing frisbee"],
                            recs)
    want = [1.0, _ref_vqa_acc("yes", norm[1]), _ref_vqa_acc("laptop", norm[2]),
            _ref_vqa_acc("playing frisbee", norm[3])]
    assert out["scores"] == pytest.approx(want)
    assert want[1] == pytest.approx(0.6) and want[3] == pytest.approx(0.9)  # 3 of 10 agree
    assert out["accuracy"] == pytest.approx(sum(want) / 4)
    assert set(out["per_answer_type"]) == {"number", "yes/no", "other"}


def test_vqa_official_quirk_skips_normalization_on_unanimous_answers():
    gts = ["yes"] * 10
    assert vqav2.vqa_accuracy("Yes.", gts) == 1.0
    assert vqav2.vqa_accuracy("Yes.", gts, official_quirk=True) == 0.0
    assert vqav2.vqa_accuracy("yes", gts, official_quirk=True) == 1.0


def test_vqav2_reader_errors(tmp_path):
    p = tmp_path / "v.jsonl"
    p.write_text(json.dumps({"question_id": 1, "question": "q", "answers": [{"ans": "x"}]}) + "\n")
    with pytest.raises((io.EvalDataError, KeyError)):
        vqav2.read_vqav2(p)
    p.write_text(json.dumps({"question_id": 1, "question": "q", "answers": []}) + "\n")
    with pytest.raises(io.EvalDataError, match="field 'answers'"):
        vqav2.read_vqav2(p)


def test_benchmark_registry_end_to_end():
    from mmada_jax.evals import registry
    cases = {"gsm8k": ("gsm8k.jsonl", ["72", "12000", "10", "-3"], 1.0),
             "mmlu": ("mmlu.jsonl", ["B", "C", "A", "C", "B"], 0.8),
             "pope": ("pope.jsonl", ["yes", "no"] * 4, 1.0),
             "vqav2": ("vqav2.jsonl", ["2", "no", "laptop", "playing frisbee"], None)}
    for name, (fname, outs, want) in cases.items():
        b = registry.get_benchmark(name)
        res = b.score(outs, b.read(FIX / fname))
        if want is not None:
            assert res[b.headline] == pytest.approx(want), name
    assert set(registry.BENCHMARKS.names()) >= {"geneval", "scene_geneval", "wise"}
    with pytest.raises(KeyError, match="unknown benchmark"):
        registry.get_benchmark("mme")
