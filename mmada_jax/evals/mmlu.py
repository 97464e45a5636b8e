"""MMLU-style multiple choice: letter extraction from free text, accuracy overall and per subject.

Reference file: JSON lines with `question`, `choices` (list of 4 strings), `answer` (an index
0..3 or a letter 'A'..'D') and optional `subject`; or the original headerless CSV layout
(question, A, B, C, D, answer letter) with the subject taken from the file name
('abstract_algebra_test.csv' -> 'abstract_algebra').
Overall accuracy is the micro average over questions; `macro_accuracy` averages subject means.
"""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from typing import Sequence

from mmada_jax.evals import answers
from mmada_jax.evals.io import EvalDataError, mean, read_jsonl

LETTERS = "ABCDEFGHIJ"


def extract_choice(text: str, num_choices: int = 4) -> str | None:
    """The chosen letter, or None. Tried in order on the text after `</think>`:
    \\boxed{X}; 'answer is (X)' / 'answer: X' / 'option X'; the whole reply being a letter
    ('B', '(B)', 'B.', 'B) text', not 'A cat'); the last '(X)'."""
    letters = LETTERS[:num_choices]
    cls = f"[{letters}]"
    t = answers.after_think(text or "").strip()
    boxed = answers.last_boxed(t)
    if boxed is not None:
        m = re.fullmatch(rf"\(?({cls})\)?(?:[.:)\s].*)?", boxed.strip(), re.DOTALL)
        if m:
            return m.group(1)
    # Cue words are case-insensitive, the letter must be a capital (so 'answer is a cat' is not A).
    pats = [rf"(?i:answer)\s*(?i:is|:)?\s*(?i:option\s*)?[:\s]*\(?({cls})\)?(?!\w)",
            rf"\b(?i:option)\s*\(?({cls})\)?(?!\w)"]
    for pat in pats:
        found = re.findall(pat, t)
        if found:
            return found[-1]
    m = re.match(rf"^[\s*]*\(?({cls})\)?(?:$|[.:)*])", t)
    if m:
        return m.group(1)
    found = re.findall(rf"\(({cls})\)", t)
    return found[-1] if found else None


def _answer_letter(ans, where: str, num_choices: int) -> str:
    if isinstance(ans, int) and 0 <= ans < num_choices:
        return LETTERS[ans]
    if isinstance(ans, str) and ans.strip().upper() in LETTERS[:num_choices]:
        return ans.strip().upper()
    raise EvalDataError(f"{where}: field 'answer' must be 0..{num_choices - 1} or a letter, "
                        f"got {ans!r}")


def read_mmlu(path: str | os.PathLike) -> list[dict]:
    """Records {question, choices, answer (letter), subject} from .jsonl or headerless .csv."""
    path = str(path)
    if path.endswith(".csv"):
        subject = re.sub(r"_(test|dev|val)$", "", os.path.basename(path)[:-4])
        out = []
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.reader(f), 1):
                if len(row) != 6:
                    raise EvalDataError(f"{path}:{i}: expected 6 columns, got {len(row)}")
                out.append(dict(question=row[0], choices=row[1:5], subject=subject,
                                answer=_answer_letter(row[5], f"{path}:{i}", 4)))
        return out
    recs = read_jsonl(path, required=("question", "choices", "answer"))
    for i, r in enumerate(recs, 1):
        if not isinstance(r["choices"], list) or not 2 <= len(r["choices"]) <= len(LETTERS):
            raise EvalDataError(f"{path}: record {i}, field 'choices': expected a list of 2-10")
        r["answer"] = _answer_letter(r["answer"], f"{path}: record {i}", len(r["choices"]))
        r.setdefault("subject", "all")
    return recs


def format_mmlu_prompt(rec: dict) -> str:
    """'question\\nA. ..\\nB. ..\\n...\\nAnswer with the letter of the correct option.'"""
    opts = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(rec["choices"]))
    return f"{rec['question']}\n{opts}\nAnswer with the letter of the correct option."


def score_mmlu(responses: Sequence[str], records: Sequence[dict]) -> dict:
    """{'accuracy' (micro), 'macro_accuracy', 'per_subject': {subject: acc}, 'n', 'unparsed',
    'correct': [bool], 'predictions': [letter | None]}."""
    if len(responses) != len(records):
        raise ValueError(f"score_mmlu: {len(responses)} responses vs {len(records)} records")
    preds = [extract_choice(r, len(rec["choices"])) for r, rec in zip(responses, records)]
    correct = [p == rec["answer"] for p, rec in zip(preds, records)]
    by_subj = defaultdict(list)
    for c, rec in zip(correct, records):
        by_subj[rec.get("subject", "all")].append(c)
    per = {s: mean(v) for s, v in sorted(by_subj.items())}
    return dict(accuracy=mean(correct), macro_accuracy=mean(per.values()), per_subject=per,
                n=len(correct), unparsed=sum(p is None for p in preds), correct=correct,
                predictions=preds)
