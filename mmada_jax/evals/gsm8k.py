"""GSM8K: reference after '####', prediction = the final answer's last number, exact accuracy.

Reference file: JSON lines with `question` and `answer` ('... reasoning ... #### 1,234').
Prediction of a response: `answers.extract_final_answer` (after `</think>`, the last \\boxed{},
else an 'answer is' / '####' cue, else all) and then its last number; compared numerically.
"""

from __future__ import annotations

import os
from typing import Sequence

from mmada_jax.evals import answers
from mmada_jax.evals.io import EvalDataError, read_jsonl


def gsm8k_reference(answer_field: str) -> str:
    """The text after the last '####' with commas removed ('#### 1,234' -> '1234')."""
    if "####" not in answer_field:
        raise ValueError(f"GSM8K answer has no '####': {answer_field[-80:]!r}")
    return answer_field.split("####")[-1].strip().replace(",", "")


def gsm8k_prediction(response: str) -> str | None:
    """The predicted number as a string, or None when the response holds no number."""
    final = answers.extract_final_answer(response)
    if answers.parse_number(final) is not None:
        return final
    return answers.last_number(final) or answers.last_number(answers.after_think(response))


def read_gsm8k(path: str | os.PathLike) -> list[dict]:
    """Records {question, answer, reference} of a GSM8K jsonl file."""
    recs = read_jsonl(path, required=("question", "answer"))
    for i, r in enumerate(recs):
        try:
            r["reference"] = gsm8k_reference(r["answer"])
        except ValueError as e:
            raise EvalDataError(f"{path}: record {i + 1}, field 'answer': {e}") from None
    return recs


def score_gsm8k(responses: Sequence[str], references: Sequence[str]) -> dict:
    """{'accuracy', 'n', 'correct': [bool], 'predictions': [str | None]}."""
    if len(responses) != len(references):
        raise ValueError(f"score_gsm8k: {len(responses)} responses vs {len(references)} references")
    preds = [gsm8k_prediction(r) for r in responses]
    correct = [p is not None and answers.answers_match(p, ref) for p, ref in zip(preds, references)]
    return dict(accuracy=sum(correct) / max(len(correct), 1), n=len(correct), correct=correct,
                predictions=preds)
