"""Final-answer extraction and comparison for free-text model outputs (shared by evals and rewards).

The final answer of a response is found in this order:
  1. the text after the last `</think>` (the whole text if there is none);
  2. in it, the last `\\boxed{...}` (balanced braces) if any;
  3. else the text after the last '####' or "answer is" / "answer:" cue if any;
  4. else the whole remaining text.
`extract_final_answer` returns that span stripped; number-expecting callers then take its last
number (`last_number`). Two answers match when both parse as numbers that agree (rel 1e-6), else
when their normalized strings are equal (lower case, no surrounding punctuation, no articles,
single spaces).
"""

from __future__ import annotations

import math
import re

_NUM_RE = re.compile(r"-?(?:\$\s*)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|-?\.\d+")
_CUE_RE = re.compile(r"(?:####|answer\s+is\s*:?|answer\s*:|final answer\s*:?)", re.IGNORECASE)
_ARTICLES = {"a", "an", "the"}


def after_think(text: str) -> str:
    """The text after the last `</think>`, or all of it."""
    i = text.rfind("</think>")
    return text if i < 0 else text[i + len("</think>"):]


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if absent."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for j in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[start:j].strip()
    return None


def extract_final_answer(text: str) -> str:
    """The final-answer span of a response (see module docstring); '' when nothing is left."""
    text = after_think(text or "")
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    cues = list(_CUE_RE.finditer(text))
    if cues:
        tail = text[cues[-1].end():].strip()
        if tail:
            return tail
    return text.strip()


def parse_number(s: str) -> float | None:
    """A number written as '1,000', '$5', '5.0', '-3', '50%', '3/4', '\\frac{3}{4}', '7.' -> float.

    Only a string that is one number (plus currency, %, surrounding punctuation, or a trailing
    unit word) parses; anything else returns None.
    """
    if s is None:
        return None
    t = s.strip()
    t = re.sub(r"\\(?:d|t)?frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", t)
    t = re.sub(r"\\[,!;: ]|\\text\{[^{}]*\}|\\%|\\\$",
               lambda m: "%" if m.group() == "\\%" else "", t)
    t = t.strip().lstrip(",;:!?([{\"'").rstrip(".,;:!?)]}\"'").strip()
    t = re.sub(r"\s+[A-Za-z][A-Za-z.]*$", "", t)  # trailing unit word: "5 dollars", "12 cm"
    t = t.replace("$", "").replace("%", "").replace(" ", "")
    if t.startswith("+"):
        t = t[1:]
    if not re.fullmatch(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:/-?\d+(?:\.\d+)?)?", t) or \
            not re.search(r"\d", t):
        return None
    t = t.replace(",", "")
    try:
        if "/" in t:
            num, den = t.split("/")
            return float(num) / float(den) if float(den) != 0 else None
        return float(t)
    except ValueError:
        return None


def last_number(text: str) -> str | None:
    """The last number-looking substring of `text` (with its '$', ',' and sign), or None."""
    found = _NUM_RE.findall(text or "")
    return found[-1].replace(" ", "") if found else None


def normalize_text(s: str) -> str:
    """Lower case, strip surrounding punctuation, drop articles, collapse spaces."""
    s = (s or "").lower().strip()
    s = re.sub(r"[^\w\s]", " ", s)
    return " ".join(w for w in s.split() if w not in _ARTICLES)


def numbers_equal(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def answers_match(pred: str | None, ref: str | None) -> bool:
    """Numeric comparison when both parse as numbers, else normalized string equality."""
    if pred is None or ref is None:
        return False
    a, b = parse_number(pred), parse_number(ref)
    if a is not None and b is not None:
        return numbers_equal(a, b)
    if b is not None:  # reference is a number: use the prediction's last number
        last = last_number(pred)
        a = parse_number(last) if last is not None else None
        return a is not None and numbers_equal(a, b)
    na, nb = normalize_text(pred), normalize_text(ref)
    return bool(nb) and na == nb
