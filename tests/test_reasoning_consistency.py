"""benchmarks/reasoning_consistency.py on hand-written answers."""

import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                     "reasoning_consistency.py")
spec = importlib.util.spec_from_file_location("reasoning_consistency", _PATH)
rc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rc)


@pytest.mark.parametrize("response,correct,want", [
    # sound and right
    ("<think> 4 + 3 = 7. </think> 7", True, dict(follows=True, true_eq=True)),
    # right by luck: a false equation, the right number
    ("<think> 4 + 5 = 8. </think> 9", True, dict(follows=False, true_eq=False, lucky=True)),
    # misled: follows a false equation
    ("<think> 9 - 3 = 5. </think> 5", False, dict(follows=True, true_eq=False, misled=True)),
    # a copy error: true equation, another number
    ("<think> 4 + 3 = 7. </think> 8", False, dict(follows=False, true_eq=True)),
    # the last equation counts
    ("<think> 2 * 3 = 6. 6 + 1 = 8. </think> 8", False, dict(follows=True, true_eq=False,
                                                             misled=True)),
    # no think block: a right answer is lucky
    ("7", True, dict(has_eq=False, lucky=True)),
])
def test_classify(response, correct, want):
    got = rc.classify(response, correct)
    base = dict(has_eq=True, follows=False, true_eq=False, lucky=False, misled=False)
    assert got == dict(base, **want)


def test_summarize_shares():
    rows = [dict(task="reasoning", response="<think> 4 + 3 = 7. </think> 7", correct=True),
            dict(task="reasoning", response="<think> 9 - 3 = 5. </think> 5", correct=False),
            dict(task="reasoning", response="<think> 4 + 5 = 8. </think> 9", correct=True),
            dict(task="reasoning", response="<think> 1 + 1 = 2. </think> 2", correct=True),
            dict(task="vqa", response="<think> x </think> red", correct=True)]
    s = rc.summarize(rows)
    assert s["n"] == 4 and s["accuracy"] == 0.75
    assert (s["follows"], s["true_eq"], s["lucky"], s["misled"]) == (0.75, 0.5, 0.25, 0.25)
    assert rc.summarize([]) == dict(n=0)


def test_main_names_a_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no answers file"):
        rc.main([str(tmp_path / "missing.jsonl")])
    bad = tmp_path / "answers.jsonl"
    bad.write_text('{"task": "reasoning", "correct": true}\n{not json\n')
    with pytest.raises(ValueError, match="answers.jsonl:2"):
        rc.main([str(bad)])
