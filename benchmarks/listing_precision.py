"""How right a demo stage's worked VQA answers describe the image: every clause of an answer's
`<think>` block that names a cell ("a small blue triangle in the top right", "red in the
center") is checked against the eval scene (`rl.rewards_listing.claims`). Reads the stage's
eval answers (WORKDIR/eval/answers.jsonl, the demo's eval on the test split, seed 0) and
regenerates their scenes with the eval's own generator.

    python benchmarks/listing_precision.py --answers runs/demo/sft/eval/answers.jsonl \
        [--max_objects 2]

Prints, as JSON: claim precision per question kind, the share of claims that name an occupied
cell, and per attribute the share right among claims about occupied cells.
"""

from __future__ import annotations

import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv):
    del argv
    from absl import flags
    from mmada_jax.data.shapesworld import scenes as sc
    from mmada_jax.evals import shapesworld_eval as swe
    from mmada_jax.rl import rewards_listing as rl_
    f = flags.FLAGS
    from mmada_jax.evals.io import read_jsonl
    rows = read_jsonl(f.answers)
    vqa = [r for r in rows if r["task"] == "vqa"]
    items = swe.vqa_items(len(vqa), f.split, f.seed, max_objects=f.max_objects)
    if any(it["question"] != r["question"] for it, r in zip(items, vqa)):
        raise ValueError(f"{f.answers}: its VQA questions are not the eval generator's "
                         f"(split {f.split!r}, seed {f.seed}, max_objects {f.max_objects})")
    per_kind = collections.defaultdict(list)
    cells, attrs = [0, 0], collections.defaultdict(lambda: [0, 0])
    for it, r in zip(items, vqa):
        scene = sc.Scene.from_json(it["scene"])
        at = {(o.row, o.col): o for o in scene.objects}
        m = rl_._THINK_RE.fullmatch(r["response"])  # pylint: disable=protected-access
        for claimed, cell in (rl_.claims(m.group(1)) if m else []):
            cells[0] += cell in at
            cells[1] += 1
            for k, v in claimed.items():
                if cell in at:
                    attrs[k][0] += getattr(at[cell], k) == v
                    attrs[k][1] += 1
        p = rl_.claim_precision(r["response"], scene)
        if p is not None:
            per_kind[r["kind"]].append(p)
    print(json.dumps(dict(
        answers=f.answers, n=len(vqa),
        claim_precision={k: round(sum(v) / len(v), 3) for k, v in per_kind.items()},
        answers_with_claims={k: len(v) for k, v in per_kind.items()},
        occupied_cell_share=round(cells[0] / max(1, cells[1]), 3), claims=cells[1],
        attribute_right_at_occupied_cells={k: round(a / max(1, b), 3)
                                           for k, (a, b) in attrs.items()})))


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("answers", None, "A demo stage's eval/answers.jsonl.", required=True)
    flags.DEFINE_string("split", "test", "The eval's split.")
    flags.DEFINE_integer("seed", 0, "The eval's seed (config.eval.seed).")
    flags.DEFINE_integer("max_objects", 2, "Objects per scene (the cpu demo: 2).")
    app.run(main)
