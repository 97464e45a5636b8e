"""A markdown table of a saved UniGRPO seed sweep (`benchmarks/grpo_seed_sweep.sh` results):
per base and variant, over its seeds, greedy reasoning accuracy against the base's SFT eval
(items fixed / broken and the sign test), the held-out sampled pass rate (prompts up / down,
`rl/heldout.py`), VQA accuracy and the stage's KL over its last 10 steps.

    python benchmarks/sweep_table.py benchmarks/results/cpu_grpo_v49_v50_anchor_gpu_sweep

Layout read: DIR[/BASE]/sft_eval/answers.jsonl[.gz] and DIR[/BASE]/NAME_sSEED/ with
answers.jsonl[.gz], heldout_rewards.json and (optional) metrics.jsonl[.gz].
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmada_jax.evals.io import read_jsonl as _rows  # noqa: E402  (path.gz when only it exists)


def _task(rows, task):
    return [r for r in rows if r.get("task") == task]


def _acc(rows) -> float:
    return sum(bool(r["correct"]) for r in rows) / max(len(rows), 1)


def base_table(base_dir: str) -> list[str]:
    """Markdown rows (one per variant) of one base's sweep."""
    from mmada_jax.evals.paired import sign_test_p
    sft = _rows(os.path.join(base_dir, "sft_eval", "answers.jsonl"))
    sft_r = _task(sft, "reasoning")
    agg = collections.OrderedDict()
    for name in sorted(os.listdir(base_dir)):
        m = re.fullmatch(r"(.+)_s(\d+)", name)
        if not m:
            continue
        d = os.path.join(base_dir, name)
        rows = _rows(os.path.join(d, "answers.jsonl"))
        got = _task(rows, "reasoning")
        if [r["question"] for r in got] != [r["question"] for r in sft_r]:
            raise ValueError(f"{d}: its reasoning problems are not the SFT eval's")
        a = agg.setdefault(m.group(1), collections.defaultdict(list))
        a["acc"].append(_acc(got))
        a["up"].append(sum(not x["correct"] and y["correct"] for x, y in zip(sft_r, got)))
        a["down"].append(sum(x["correct"] and not y["correct"] for x, y in zip(sft_r, got)))
        a["vqa"].append(_acc(_task(rows, "vqa")))
        with open(os.path.join(d, "heldout_rewards.json")) as f:
            c = json.load(f)["compare"]["reasoning"]
        a["pass_before"].append(c["pass_before"])
        a["pass_after"].append(c["pass_after"])
        a["pass_up"].append(c["pass_up"])
        a["pass_down"].append(c["pass_down"])
        try:
            metrics = _rows(os.path.join(d, "metrics.jsonl"))
            a["kl"].append(sum(r["kl"] for r in metrics[-10:]) / len(metrics[-10:]))
        except FileNotFoundError:
            pass

    def mean(v):
        return sum(v) / len(v) if v else float("nan")
    out = [f"SFT: greedy reasoning {_acc(sft_r):.3f} on {len(sft_r)}, VQA "
           f"{_acc(_task(sft, 'vqa')):.3f}", "",
           "| variant | seeds | greedy reasoning (each seed) | fixed / broken, p | held-out "
           "pass rate | prompts up / down, p | VQA | KL (last 10 steps) |",
           "|---|---|---|---|---|---|---|---|"]
    for name, a in agg.items():
        up, down, pu, pd = sum(a["up"]), sum(a["down"]), sum(a["pass_up"]), sum(a["pass_down"])
        out.append(
            f"| {name} | {len(a['acc'])} | {mean(a['acc']):.3f} "
            f"({', '.join(f'{x:.3f}' for x in a['acc'])}) | {up} / {down}, "
            f"{sign_test_p(up, down):.2g} | {mean(a['pass_before']):.3f} -> "
            f"{mean(a['pass_after']):.3f} | {pu} / {pd}, {sign_test_p(pu, pd):.2g} | "
            f"{mean(a['vqa']):.3f} | {mean(a['kl']):.4f} |")
    return out


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    root = argv[1]
    bases = ([root] if os.path.isdir(os.path.join(root, "sft_eval")) else
             [os.path.join(root, b) for b in sorted(os.listdir(root))
              if os.path.isdir(os.path.join(root, b, "sft_eval"))])
    if not bases:
        raise SystemExit(f"{root}: no sft_eval/ here or one level down")
    for b in bases:
        print(f"### {os.path.basename(b)}\n")
        print("\n".join(base_table(b)) + "\n")


if __name__ == "__main__":
    main(sys.argv)
