"""VQAv2 soft accuracy with the official answer normalization.

acc(pred) = mean over the 10 human answers h_j of min(1, #{k != j : h_k == pred} / 3), i.e. the
min(#humans/3, 1) rule averaged over the 10 choose-9 subsets, as in the official `vqaEval.py`.

Normalization (official): newlines/tabs -> spaces, strip; punctuation removed or spaced (commas
between digits dropped); periods not part of a number removed; lower case; number words
'none'/'zero'..'ten' -> digits; articles a/an/the dropped; apostrophe-less contractions restored
('dont' -> "don't"). The official script normalizes only when the 10 human answers disagree;
`official_quirk=True` reproduces that, the default normalizes always (as lmms-eval does, and as
LLaVA does by normalizing predictions before submission).

Reference file: JSON lines with `question_id`, `question` and `answers` (10 strings, or a list of
{'answer': str} as in the official annotations); optional `image`, `answer_type`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Sequence

from mmada_jax.evals import answers as answers_lib
from mmada_jax.evals.io import EvalDataError, mean, read_jsonl

_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
          "`", ",", "?", "!"]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # (sic) the official pattern
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# Apostrophe-less spelling -> official spelling (the official table, incl. its 'somebodyd' entry).
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "id've": "i'd've", "i'dve": "i'd've", "im": "i'm",
    "ive": "i've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's",
    "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}


def _clean(s: str) -> str:
    return s.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out)


def process_digit_article(text: str) -> str:
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(text: str) -> str:
    """The official punctuation + digit/article/contraction normalization."""
    return process_digit_article(process_punctuation(_clean(text)))


def vqa_accuracy(pred: str, human_answers: Sequence[str], official_quirk: bool = False) -> float:
    """Soft accuracy of one prediction against its (usually 10) human answers."""
    gts = [_clean(a) for a in human_answers]
    res = _clean(pred)
    if not official_quirk or len(set(gts)) > 1:
        gts = [normalize_answer(a) for a in gts]
        res = normalize_answer(res)
    accs = []
    for j in range(len(gts)):
        matches = sum(1 for k, a in enumerate(gts) if k != j and a == res)
        accs.append(min(1.0, matches / 3.0))
    return mean(accs)


def vqa_prediction(response: str) -> str:
    """The short answer of a free-text reply: the text after `</think>`, first line, with a
    leading 'The answer is' / 'Answer:' cue removed."""
    t = answers_lib.after_think(response or "").strip()
    t = t.split("\n")[0] if t else t
    return re.sub(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", "", t, flags=re.IGNORECASE)


def read_vqav2(path: str | os.PathLike) -> list[dict]:
    """Records {question_id, question, answers: [str]} (answer dicts flattened)."""
    recs = read_jsonl(path, required=("question_id", "question", "answers"))
    for i, r in enumerate(recs, 1):
        a = r["answers"]
        if not isinstance(a, list) or not a:
            raise EvalDataError(f"{path}: record {i}, field 'answers': expected a non-empty list")
        r["answers"] = [x["answer"] if isinstance(x, dict) else x for x in a]
        if not all(isinstance(x, str) for x in r["answers"]):
            raise EvalDataError(f"{path}: record {i}, field 'answers': entries must be strings "
                                "or {'answer': str}")
    return recs


def score_vqav2(responses: Sequence[str], records: Sequence[dict],
                official_quirk: bool = False) -> dict:
    """{'accuracy' (mean soft accuracy), 'per_answer_type', 'n', 'scores': [float]}."""
    if len(responses) != len(records):
        raise ValueError(f"score_vqav2: {len(responses)} responses vs {len(records)} records")
    scores = [vqa_accuracy(vqa_prediction(r), rec["answers"], official_quirk)
              for r, rec in zip(responses, records)]
    by_type = defaultdict(list)
    for s, rec in zip(scores, records):
        by_type[rec.get("answer_type", "all")].append(s)
    per_type = {k: mean(v) for k, v in sorted(by_type.items())}
    return dict(accuracy=mean(scores), per_answer_type=per_type, n=len(scores), scores=scores)
