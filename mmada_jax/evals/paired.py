"""Paired comparison of two evaluations on the same items: which answers a later stage fixed,
which it broke, and an exact two-sided sign test (McNemar's exact test) on the discordant pairs.

Two stages of one run answer the same test questions (the evaluator's item generator is seeded),
so a change in accuracy is judged on the items whose verdict changed, not as two independent
proportions: at 96 items a +0.04 change is 4 more items fixed than broken, and whether that is
more than chance depends on how many items moved at all.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from math import comb
from typing import Iterable, Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class PairedChange:
    """fixed: wrong before, right after; broken: right before, wrong after; n: paired items."""
    task: str
    n: int
    before: float
    after: float
    fixed: int
    broken: int
    p_value: float

    def describe(self) -> str:
        return (f"{self.task} {self.before:.3f} -> {self.after:.3f} on {self.n} paired items: "
                f"{self.fixed} fixed, {self.broken} broken, sign-test p = {self.p_value:.3g}")


def sign_test_p(fixed: int, broken: int) -> float:
    """Exact two-sided p-value of `fixed` successes in `fixed + broken` fair coin flips
    (McNemar's exact test): P(X <= min) + P(X >= max) under Binomial(n, 1/2), capped at 1."""
    if fixed < 0 or broken < 0:
        raise ValueError(f"sign_test_p: counts must be >= 0 (got {fixed}, {broken})")
    n = fixed + broken
    if n == 0:
        return 1.0
    k = min(fixed, broken)
    tail = Fraction(sum(comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def _key(row: Mapping) -> tuple:
    return (row.get("task"), row.get("kind"), row.get("question"), str(row.get("answer")))


def paired_changes(before: Sequence[Mapping], after: Sequence[Mapping],
                   tasks: Iterable[str] | None = None, field: str = "correct",
                   label: str = "") -> list[PairedChange]:
    """Per task, pair the i-th answer to each (task, kind, question, reference) in `before` with
    the i-th such answer in `after` (rows as in the evaluator's answers.jsonl: task, kind,
    question, answer, correct, and for reasoning `sound`: right by sound steps), comparing the
    boolean `field`. Items present in only one of them, or without the field, are left out.
    `label` is appended to each task's name ("reasoning" + " sound steps")."""
    def index(rows):
        seen: dict[tuple, int] = {}
        out = {}
        for r in rows:
            k = _key(r)
            n = seen.get(k, 0)
            seen[k] = n + 1
            if field in r:
                out[k + (n,)] = bool(r[field])
        return out

    a, b = index(before), index(after)
    shared = [k for k in a if k in b]
    names = list(dict.fromkeys(k[0] for k in shared)) if tasks is None else list(tasks)
    out = []
    for task in names:
        keys = [k for k in shared if k[0] == task]
        if not keys:
            continue
        fixed = sum(1 for k in keys if b[k] and not a[k])
        broken = sum(1 for k in keys if a[k] and not b[k])
        n = len(keys)
        out.append(PairedChange(task=f"{task} {label}".strip(), n=n,
                                before=sum(a[k] for k in keys) / n,
                                after=sum(b[k] for k in keys) / n, fixed=fixed, broken=broken,
                                p_value=sign_test_p(fixed, broken)))
    return out
