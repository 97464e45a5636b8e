"""Paired stage comparison (mmada_jax/evals/paired.py) and the demo report's uses of it."""

import itertools
import json
import os

import numpy as np
import pytest

from mmada_jax.evals.paired import paired_changes, sign_test_p
from mmada_jax.pipeline_report import paired_lines, reward_window_table


def brute_force_p(fixed: int, broken: int) -> float:
    """Two-sided p by enumerating every outcome of n fair coins: the probability of an outcome
    at least as unbalanced as the observed one."""
    n = fixed + broken
    if n == 0:
        return 1.0
    observed = abs(fixed - broken)
    hits = sum(1 for flips in itertools.product((0, 1), repeat=n)
               if abs(2 * sum(flips) - n) >= observed)
    return hits / 2 ** n


@pytest.mark.parametrize("fixed,broken", [(0, 0), (1, 0), (0, 3), (6, 2), (2, 6), (5, 5),
                                          (9, 1), (7, 6), (0, 13), (11, 3)])
def test_sign_test_matches_enumeration(fixed, broken):
    assert sign_test_p(fixed, broken) == pytest.approx(brute_force_p(fixed, broken), rel=1e-12)


def test_sign_test_large_counts_stay_finite_and_symmetric():
    p = sign_test_p(230, 170)
    assert 0 < p < 0.01 and p == sign_test_p(170, 230)
    assert sign_test_p(200, 200) == 1.0
    with pytest.raises(ValueError, match="counts"):
        sign_test_p(-1, 2)


def _rows(task, correct, questions=None):
    questions = questions or [f"q{i}" for i in range(len(correct))]
    return [dict(task=task, kind=task, question=q, answer="1", correct=bool(c))
            for q, c in zip(questions, correct)]


def test_paired_changes_counts_against_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.random(37) < 0.6, rng.random(37) < 0.7
    before = _rows("reasoning", a) + _rows("vqa", a[:11])
    after = _rows("vqa", b[:11]) + _rows("reasoning", b)  # order of rows does not matter
    got = {c.task: c for c in paired_changes(before, after)}
    r = got["reasoning"]
    assert (r.n, r.fixed, r.broken) == (37, int(np.sum(b & ~a)), int(np.sum(a & ~b)))
    assert r.before == pytest.approx(a.mean()) and r.after == pytest.approx(b.mean())
    assert r.p_value == pytest.approx(brute_force_p(r.fixed, r.broken))
    assert got["vqa"].n == 11


def test_paired_changes_other_field_and_rows_without_it():
    before = _rows("reasoning", [1, 1, 0, 1])
    after = _rows("reasoning", [1, 1, 1, 1])
    for r, sound in zip(before, [0, 1, 0, 1]):
        r["sound"] = bool(sound)
    for r, sound in zip(after, [1, 1, 1, 0]):
        r["sound"] = bool(sound)
    del before[3]["sound"]  # an item without the field is left out
    (c,) = paired_changes(before, after, field="sound", label="sound steps")
    assert c.task == "reasoning sound steps" and (c.n, c.fixed, c.broken) == (3, 2, 0)
    assert paired_changes(_rows("vqa", [1]), _rows("vqa", [0]), field="sound") == []


def test_paired_changes_duplicates_and_missing_items():
    # the same question asked twice pairs in order; a question only one side has is left out
    before = _rows("vqa", [1, 0, 1], ["same", "same", "only_before"])
    after = _rows("vqa", [1, 1, 0], ["same", "same", "only_after"])
    (c,) = paired_changes(before, after)
    assert (c.n, c.fixed, c.broken) == (2, 1, 0)
    assert paired_changes(before, after, tasks=("reasoning",)) == []


def test_report_paired_lines_and_reward_windows(tmp_path):
    for stage, correct in (("sft", [0, 0, 1, 1, 0]), ("grpo", [1, 1, 1, 0, 0])):
        os.makedirs(tmp_path / stage / "eval")
        with open(tmp_path / stage / "eval" / "answers.jsonl", "w") as f:
            for r in _rows("reasoning", correct):
                f.write(json.dumps(dict(r, sound=r["correct"] and r["question"] != "q1"))
                        + "\n")
    lines = paired_lines(str(tmp_path), ["pretrain", "sft", "grpo"])
    text = "\n".join(lines)
    assert "grpo vs sft" in text and "sft vs pretrain" not in text
    assert "reasoning 0.400 -> 0.600 on 5 paired items: 2 fixed, 1 broken" in text
    assert "reasoning sound steps 0.400 -> 0.400 on 5 paired items: 1 fixed, 1 broken" in text

    hist = [{"step": i + 1, "reasoning/reward_mean": float(i), "time/step_s": 1.0}
            for i in range(8)]
    table = reward_window_table(hist)
    assert table[0] == "| per task | steps 1-2 (mean) | steps 7-8 (mean) |"
    assert table[2] == "| reasoning/reward_mean | 0.500 | 6.500 |"
    assert not any("time/" in x for x in table)
    assert reward_window_table([]) == []


def test_report_heldout_objective_line_against_hand_counts():
    from mmada_jax.pipeline_report import heldout_delta_lines
    from mmada_jax.rl.heldout import compare_heldout
    before = {"reasoning": dict(prompt_means=[1.0, 2.0, 3.0, 2.5], reward_mean=2.125,
                                pass_rate=0.5, samples=6)}
    after = {"reasoning": dict(prompt_means=[2.0, 2.0, 1.0, 3.0], reward_mean=2.0,
                               pass_rate=0.625, samples=6)}
    (line,) = heldout_delta_lines(dict(compare=compare_heldout(before, after)))
    # prompts 0 and 3 rose, 2 fell, 1 tied: 2 up / 1 down, two-sided sign test p = 1
    assert "reasoning reward 2.125 -> 2.000 (-0.125)" in line
    assert "sampled accuracy 0.500 -> 0.625 (+0.125)" in line
    assert f"4 prompts x 6: 2 up / 1 down, p {sign_test_p(2, 1):.2g}" in line
    assert heldout_delta_lines({}) == [] and heldout_delta_lines(dict(compare={})) == []
    before["reasoning"]["prompt_pass"] = [0.5, 0.5, 0.5, 0.5]
    after["reasoning"]["prompt_pass"] = [1.0, 0.5, 0.0, 1.0]
    (line,) = heldout_delta_lines(dict(compare=compare_heldout(before, after)))
    assert f"(+0.125): 2 prompts up / 1 down, p {sign_test_p(2, 1):.2g}" in line


def test_report_names_a_corrupt_heldout_file(tmp_path):
    from mmada_jax.pipeline_report import write_demo_report
    os.makedirs(tmp_path / "grpo")
    (tmp_path / "grpo" / "heldout_rewards.json").write_text('{"compare": ')
    with pytest.raises(ValueError, match="heldout_rewards.json is not valid JSON"):
        write_demo_report(str(tmp_path), ["sft", "grpo"], {"sft": {}, "grpo": {}}, {}, 1.0, {})


def test_report_heldout_table_has_the_pass_share_sign_test():
    from mmada_jax.pipeline_report import heldout_reward_lines
    from mmada_jax.rl.heldout import compare_heldout
    before = {"reasoning": dict(prompt_means=[1.0, 2.0, 3.0], prompt_pass=[0.0, 0.5, 1.0],
                                reward_mean=2.0, pass_rate=0.5, samples=2)}
    after = {"reasoning": dict(prompt_means=[2.0, 2.5, 3.0], prompt_pass=[0.5, 1.0, 1.0],
                               reward_mean=2.5, pass_rate=0.833333, samples=2)}
    lines = heldout_reward_lines(dict(compare=compare_heldout(before, after)))
    row = next(x for x in lines if x.startswith("| reasoning"))
    p = f"{sign_test_p(2, 0):.2g}"
    assert row == (f"| reasoning | 3 x 2 | 2.000 -> 2.500 (+0.500) | 2 / 0 ({p}) | "
                   f"0.500 -> 0.833 (+0.333) | 2 / 0 ({p}) |")
    old = {t: {k: v for k, v in c.items() if k != "prompt_pass"} for t, c in before.items()}
    row = next(x for x in heldout_reward_lines(dict(compare=compare_heldout(old, after)))
               if x.startswith("| reasoning"))
    assert row.endswith("| - |")  # results written before per-prompt pass shares
