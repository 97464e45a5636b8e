"""How reasoning answers relate to their own worked steps, from eval answers.jsonl files.

    python benchmarks/reasoning_consistency.py runs/demo/sft/eval/answers.jsonl \
        runs/demo/grpo/eval/answers.jsonl

Per file, over its reasoning rows: accuracy; `follows`, the share whose final answer is the
result of the think block's last equation; `true_eq`, the share whose last equation is
arithmetically true; `lucky`, right answers behind a false last equation or one the answer does
not follow; `misled`, wrong answers that follow a false equation. UniGRPO's correctness and
equations rewards push `follows` and `true_eq` up; held-out accuracy rises with them only where
few equations are false (BENCHMARKS.md, "The demo": `misled` grows from `lucky`).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmada_jax.rl.rewards_equations import equation_holds, worked_steps  # noqa: E402
from mmada_jax.evals.io import read_jsonl, resolve_text_path  # noqa: E402


def classify(response: str, correct: bool, tol: float = 1e-6) -> dict:
    """Flags of one answer: has_eq, follows, true_eq, lucky, misled (bools). The steps are
    read as the 'equations' reward reads them (`rl.rewards_equations.worked_steps`)."""
    eqs, final = worked_steps(response or "") or ([], None)
    out = dict(has_eq=bool(eqs), follows=False, true_eq=False, lucky=False, misled=False)
    if not eqs:
        out["lucky"] = bool(correct)
        return out
    a, op, b, c = eqs[-1]
    out["follows"] = final is not None and abs(final - c) <= tol
    out["true_eq"] = equation_holds(a, op, b, c, tol)
    out["lucky"] = bool(correct) and not (out["follows"] and out["true_eq"])
    out["misled"] = (not correct) and out["follows"] and not out["true_eq"]
    return out


def summarize(rows) -> dict:
    """Shares over the reasoning rows of an answers.jsonl (list of dicts)."""
    rows = [r for r in rows if r.get("task") == "reasoning"]
    if not rows:
        return dict(n=0)
    flags = [classify(r.get("response", ""), bool(r.get("correct"))) for r in rows]
    n = len(rows)
    out = dict(n=n, accuracy=sum(bool(r.get("correct")) for r in rows) / n)
    for k in ("follows", "true_eq", "lucky", "misled"):
        out[k] = sum(f[k] for f in flags) / n
    return out


def main(paths):
    if not paths:
        raise SystemExit(__doc__)
    for p in paths:
        if not os.path.exists(resolve_text_path(p)):
            raise FileNotFoundError(f"{p}: no answers file (an eval's answers.jsonl)")
        s = summarize(read_jsonl(p))  # a bad row: EvalDataError naming file and line
        print(json.dumps(dict(file=p, **{k: round(v, 4) if isinstance(v, float) else v
                                         for k, v in s.items()})), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
