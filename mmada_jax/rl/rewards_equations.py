"""'equations' reward: the worked steps in the `<think>` block are sound and lead to the answer.

For arithmetic chats whose reasoning is written as equations ('4 + 3 = 7. 7 * 2 = 14.'), a
completion earns `value` when
  * it is well formatted (`rewards.well_formatted`) and its `<think>` block holds at least one
    equation `a op b = c` (op one of + - * x × /);
  * every equation is arithmetically true;
  * every operand is a number of the prompt or the result of an earlier equation (the steps work
    on the problem's numbers, not invented ones);
  * the last result equals the final answer after `</think>`.

Why: with answers that are small integers, a weak policy guesses the right number behind wrong
steps often enough that 'correctness' alone rewards luck (measured on the CPU demo's SFT model:
"<think> 9 - 2 = 9. </think> 2" passes). Ranking sound, consistent work above a lucky guess gives
UniGRPO groups a signal about the reasoning itself.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from mmada_jax.evals import answers as answers_lib
from mmada_jax.rl.rewards import _THINK_RE, register_reward, well_formatted

_NUM = r"-?\d+(?:\.\d+)?"
EQUATION_RE = re.compile(rf"({_NUM})\s*([-+*x×/])\s*({_NUM})\s*=\s*({_NUM})")
_NUMBER_RE = re.compile(_NUM)
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "x": lambda a, b: a * b, "×": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else float("nan")}


def equations(text: str) -> list[tuple[float, str, float, float]]:
    """Every `a op b = c` in `text`, in order, as (a, op, b, c)."""
    return [(float(a), op, float(b), float(c)) for a, op, b, c in EQUATION_RE.findall(text)]


def equation_holds(a: float, op: str, b: float, c: float, tol: float = 1e-6) -> bool:
    """`a op b = c` is arithmetically true (within `tol`)."""
    return abs(_OPS[op](a, b) - c) <= tol


def worked_steps(completion: str):
    """(the think block's equations, the final answer as a number or None) of a well-formatted
    completion (`rewards.well_formatted`); None for any other."""
    if not well_formatted(completion):
        return None
    eqs = equations(_THINK_RE.fullmatch(completion).group(1))
    return eqs, answers_lib.parse_number(answers_lib.extract_final_answer(completion))


def sound_work(prompt: str, completion: str, tol: float = 1e-6) -> bool:
    """True when the completion's think-block equations satisfy every rule of the module
    docstring against `prompt`."""
    steps = worked_steps(completion)
    if steps is None or not steps[0]:
        return False
    eqs, final = steps
    known = {float(x) for x in _NUMBER_RE.findall(prompt or "")}
    for a, op, b, c in eqs:
        if not all(any(abs(v - k) <= tol for k in known) for v in (a, b)):
            return False
        if not equation_holds(a, op, b, c, tol):
            return False
        known.add(c)
    return final is not None and abs(final - eqs[-1][3]) <= tol


@register_reward("equations")
@dataclasses.dataclass(frozen=True)
class EquationsReward:
    """`value` for a completion whose equations are sound (`sound_work`) given its prompt."""

    value: float = 1.0

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **_):
        if len(prompts) != len(completions):
            raise ValueError(f"reward 'equations': {len(prompts)} prompts for "
                             f"{len(completions)} completions")
        return np.array([self.value if sound_work(p, c) else 0.0
                         for p, c in zip(prompts, completions)], np.float32)
