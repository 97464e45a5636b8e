"""benchmarks/sweep_table.py on a hand-made sweep directory with known counts."""

import gzip
import importlib.util
import json
import os

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                     "sweep_table.py")
spec = importlib.util.spec_from_file_location("sweep_table", _PATH)
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)


def _answers(path, reasoning, vqa, gz=False):
    rows = [dict(task="reasoning", question=f"q{i}", correct=bool(c)) for i, c in
            enumerate(reasoning)]
    rows += [dict(task="vqa", question=f"v{i}", correct=bool(c)) for i, c in enumerate(vqa)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if gz:
        with gzip.open(path + ".gz", "wt") as f:
            f.write(text)
    else:
        with open(path, "w") as f:
            f.write(text)


def _seed(d, reasoning, vqa, up, down, before, after, kls):
    _answers(os.path.join(d, "answers.jsonl"), reasoning, vqa, gz=True)
    with open(os.path.join(d, "heldout_rewards.json"), "w") as f:
        json.dump(dict(compare=dict(reasoning=dict(pass_before=before, pass_after=after,
                                                   pass_up=up, pass_down=down))), f)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for k in kls:
            f.write(json.dumps(dict(kl=k)) + "\n")


def test_sweep_table_counts_and_means(tmp_path):
    base = tmp_path / "v1"
    _answers(str(base / "sft_eval" / "answers.jsonl"), [1, 1, 0, 0, 1], [1, 0])
    # seed 1 fixes items 2, 3 and breaks 0; seed 2 fixes 2
    _seed(str(base / "x_s1"), [0, 1, 1, 1, 1], [1, 1], 3, 1, 0.5, 0.6, [1.0] * 5 + [0.1] * 10)
    _seed(str(base / "x_s2"), [1, 1, 1, 0, 1], [0, 0], 2, 2, 0.5, 0.4, [0.3] * 10)
    lines = st.base_table(str(base))
    assert lines[0] == "SFT: greedy reasoning 0.600 on 5, VQA 0.500"
    row = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert row[:2] == ["x", "2"]
    assert row[2] == "0.800 (0.800, 0.800)"
    assert row[3].startswith("3 / 1, ")
    assert row[4] == "0.500 -> 0.500"
    assert row[5].startswith("5 / 3, ")
    assert row[6] == "0.500"  # VQA: 1.0 and 0.0
    assert row[7] == "0.2000"  # mean of the last-10-step KLs 0.1 and 0.3


def test_sweep_table_refuses_other_problems(tmp_path):
    base = tmp_path / "v1"
    _answers(str(base / "sft_eval" / "answers.jsonl"), [1, 0], [])
    d = base / "y_s1"
    _seed(str(d), [1, 0], [], 0, 0, 0.5, 0.5, [0.0])
    rows = [dict(task="reasoning", question="other", correct=True)] * 2
    with gzip.open(d / "answers.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="not the SFT eval's"):
        st.base_table(str(base))
