"""Report pieces for the pipeline: PNG image grids, metric curves as matplotlib plots, and the
markdown report of a multi-stage run (`write_demo_report`)."""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np


def to_uint8(img) -> np.ndarray:
    x = np.asarray(img)
    if x.dtype == np.uint8:
        return x
    return np.clip(np.round((np.clip(x, -1, 1) + 1) * 127.5), 0, 255).astype(np.uint8)


def save_image_grid(images: Sequence, path: str, ncol: int = 8, scale: int = 2,
                    pad: int = 2) -> str:
    """Images ([S, S, 3], uint8 or float in [-1, 1]) -> one PNG grid at `path`."""
    from PIL import Image
    if not len(images):
        raise ValueError("save_image_grid: no images")
    ims = [to_uint8(im) for im in images]
    h, w = ims[0].shape[:2]
    ncol = min(ncol, len(ims))
    nrow = -(-len(ims) // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(ims):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = im
    out = Image.fromarray(grid)
    if scale > 1:
        out = out.resize((out.width * scale, out.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out.save(path)
    return path


def read_jsonl(path: str) -> list[dict]:
    """Rows of a .jsonl file (or of its gzipped copy); [] when there is neither."""
    from mmada_jax.evals import io
    return io.read_jsonl(path) if os.path.exists(io.resolve_text_path(path)) else []


def plot_curves(history: Sequence[dict], keys: Sequence[str], path: str, title: str = "",
                xlabel: str = "step", smooth: int = 1) -> str | None:
    """Line plot of history[key] against history['step'] for each key present."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k in keys if any(k in h for h in history)]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for k in keys:
        pts = [(h["step"], h[k]) for h in history if k in h and h[k] is not None]
        xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], float)
        ax.plot(xs, ys, alpha=0.35 if smooth > 1 else 1.0, label=None if smooth > 1 else k)
        if smooth > 1 and len(ys) >= smooth:
            sm = np.convolve(ys, np.ones(smooth) / smooth, mode="valid")
            ax.plot(xs[smooth - 1:], sm, label=f"{k} (mean of {smooth})")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- metrics table
# (column title, path into an eval report's 'results')
METRICS = (
    ("reasoning acc", ("reasoning", "accuracy")),
    ("reasoning format", ("reasoning", "format_rate")),
    ("reasoning right by sound steps", ("reasoning", "sound_rate")),
    ("VQA acc", ("vqa", "accuracy")),
    ("POPE acc", ("pope", "accuracy")),
    ("POPE F1", ("pope", "f1")),
    ("GenEval single", ("t2i", "per_tag", "single_object")),
    ("two obj", ("t2i", "per_tag", "two_object")),
    ("counting", ("t2i", "per_tag", "counting")),
    ("colors", ("t2i", "per_tag", "colors")),
    ("position", ("t2i", "per_tag", "position")),
    ("color attr", ("t2i", "per_tag", "color_attr")),
    ("GenEval overall", ("t2i", "overall")),
    ("scene exact", ("t2i", "exact_scene")),
    ("object F1", ("t2i", "object_f1")),
    ("WISE (t2i)", ("wise", "accuracy")),
    ("WISE (r2i)", ("wise_r2i", "accuracy")),
)


def lookup(results: dict, path) -> float | None:
    x = results
    for p in path:
        if not isinstance(x, dict) or p not in x:
            return None
        x = x[p]
    if isinstance(x, dict) and "accuracy" in x:
        x = x["accuracy"]
    return float(x) if isinstance(x, (int, float)) else None


def metrics_table(rows: Sequence[tuple[str, dict]]) -> str:
    """Markdown table, one row per (stage name, eval results), one column per METRICS entry
    (transposed: metrics as rows, stages as columns, which reads better with many metrics)."""
    names = [r[0] for r in rows]
    lines = ["| metric | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for title, path in METRICS:
        vals = [lookup(res, path) for _, res in rows]
        if all(v is None for v in vals):
            continue
        lines.append(f"| {title} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals)
                     + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- demo report
def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root)


def weights_lines(workdir: str, stages: Sequence[str]) -> list[str]:
    """'Scored: pretrain step 20000, moving average of the parameters; ...' from each stage's
    eval/report.json (nothing when no stage kept a moving average, or for older reports)."""
    parts, any_ema = [], False
    for s in stages:
        meta = _load(os.path.join(workdir, s, "eval", "report.json")).get("meta", {})
        if "weights" not in meta:
            continue
        any_ema |= meta["weights"] == "ema"
        what = ("moving average of the parameters" if meta["weights"] == "ema"
                else "last step's parameters")
        parts.append(f"{s} step {meta.get('step', '?')}, {what}")
    if not any_ema:
        return []
    return ["Scored checkpoints: " + "; ".join(parts) + " (`train.ema_decay`; a stage hands "
            "its moving average on to the next).", ""]


def write_demo_report(workdir: str, stages: Sequence[str], results: dict, times: dict,
                      total_s: float, meta: dict) -> str:
    """WORKDIR/report.md: metric table per stage, t2i grids, CoT samples, the reward curve."""
    lines = ["# mmada-jax demo: ShapesWorld, one model, three stages", "",
             f"Variant `{meta.get('variant')}`, image tokenizer `{meta.get('image_tokenizer')}`; "
             f"total wall time {total_s / 60:.1f} min. Every number below is measured by this "
             "run on the ShapesWorld **test** split (held-out color/shape combinations and "
             "knowledge items); nothing is edited.", ""]
    lines += ["## Metrics per stage", "", metrics_table([(s, results[s]) for s in stages]), ""]
    lines += weights_lines(workdir, stages)
    lines += ["Reasoning: arithmetic word problems (chat, `<think>` CoT), exact final answer; "
              "'right by sound steps' counts only right answers whose equations are true, use "
              "the problem's numbers and end at the answer (the rest were guessed). "
              "VQA: count/color/position questions on test scenes. POPE: balanced yes/no "
              "existence. GenEval-style: generated images read back by the ShapesWorld scene "
              "parser and scored per tag (overall = mean of tags). WISE-style: knowledge prompts "
              "('a small tomato ...') on items never drawn in training, drawn directly (t2i) or "
              "after reasoning (r2i).", ""]
    heldout = (_load(os.path.join(workdir, "grpo", "heldout_rewards.json"))
               if "grpo" in stages else {})
    lines += stage_deltas(stages, results) + heldout_delta_lines(heldout) + [""]
    lines += paired_lines(workdir, stages) + [""]
    tok = meta.get("tokenizer_eval") or {}
    if tok:
        lines += ["Image tokenizer (held-out reconstructions): " + ", ".join(
            f"{k} {v:.3f}" for k, v in tok.items()), ""]
    lines += ["## Time per phase", "", "| phase | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in times.items()] + [""]
    # reward curve
    hist = read_jsonl(os.path.join(workdir, "grpo", "metrics.jsonl"))
    if hist:
        keys = [k for k in hist[-1] if k.endswith("/reward_mean")]
        p = plot_curves(hist, keys, os.path.join(workdir, "grpo_rewards.png"),
                        "UniGRPO reward per task (rollouts of the current policy)",
                        smooth=min(5, max(1, len(hist) // 4)))
        p2 = plot_curves(hist, ["kl", "clip_fraction", "kept_fraction"],
                         os.path.join(workdir, "grpo_kl_clip.png"), "UniGRPO KL / clip / kept")
        lines += ["## UniGRPO", ""]
        lines += heldout_reward_lines(heldout)
        if p:
            lines += [f"![reward curve]({_rel(p, workdir)})", ""]
        if p2:
            lines += [f"![kl and clip fraction]({_rel(p2, workdir)})", ""]
        lines += reward_window_table(hist) + [""]
    lines += ["## Text-to-image samples (test prompts, the same prompts at every stage)", ""]
    for s in stages:
        for name in ("t2i", "wise", "wise_r2i"):
            p = os.path.join(workdir, s, "eval", f"{name}_samples.png")
            if os.path.exists(p):
                lines += [f"**{s}: {name}**", "", f"![{s} {name}]({_rel(p, workdir)})", ""]
        samples = _load(os.path.join(workdir, s, "eval", "samples.json"))
        if samples.get("t2i"):
            lines += ["Prompts of the first row (left to right): " + "; ".join(
                f"[{x['tag']}{' ok' if x['correct'] else ''}] {x['prompt']}"
                for x in samples["t2i"][:6]), ""]
    lines += ["## Sample CoT answers (greedy decoding, test split)", ""]
    for s in stages:
        samples = _load(os.path.join(workdir, s, "eval", "samples.json"))
        lines += [f"### {s}", ""]
        for task in ("reasoning", "vqa", "pope", "wise_r2i"):
            for x in samples.get(task, [])[:2]:
                q = x.get("question", x.get("prompt", ""))
                a = x.get("answer", x.get("reference", ""))
                r = x.get("response", x.get("reasoning", ""))
                lines += [f"- **{task}** Q: {q}", f"  - reference: `{a}`",
                          f"  - model: `{_short(r)}`"]
        lines.append("")
    path = os.path.join(workdir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(dict(results={s: {k: v for k, v in results[s].items()} for s in stages},
                       times=times, total_s=total_s, meta=meta), f, indent=1, default=str)
    return path


# what each stage targets (acceptance: it should improve these over the previous stage)
TARGETS = {
    "sft": (("reasoning acc", ("reasoning", "accuracy")), ("VQA acc", ("vqa", "accuracy")),
            ("reasoning format", ("reasoning", "format_rate")),
            ("WISE (r2i)", ("wise_r2i", "accuracy"))),
    "grpo": (("reasoning acc", ("reasoning", "accuracy")), ("VQA acc", ("vqa", "accuracy")),
             ("reasoning right by sound steps", ("reasoning", "sound_rate")),
             ("POPE acc", ("pope", "accuracy")), ("GenEval overall", ("t2i", "overall")),
             ("object F1", ("t2i", "object_f1"))),
}


def stage_deltas(stages, results) -> list[str]:
    """One line per stage: its targeted metrics against the previous stage (signed deltas)."""
    out = ["Targeted metrics against the previous stage:", ""]
    for prev, cur in zip(stages, stages[1:]):
        parts = []
        for title, path in TARGETS.get(cur, ()):
            a, b = lookup(results[prev], path), lookup(results[cur], path)
            if a is not None and b is not None:
                parts.append(f"{title} {a:.3f} -> {b:.3f} ({b - a:+.3f})")
        if parts:
            out.append(f"- **{cur} vs {prev}**: " + "; ".join(parts))
    return out


def heldout_delta_lines(heldout: dict) -> list[str]:
    """One line beside the targeted metrics: UniGRPO's objective on held-out prompts per task
    (`rl/heldout.py`), i.e. its mean reward and the accuracy of the answers as the policy
    samples them (pass@1 at the rollout temperature), SFT -> UniGRPO, with the sign test."""
    comp = heldout.get("compare") or {}
    parts = [f"{t} reward {c['before']:.3f} -> {c['after']:.3f} ({c['after'] - c['before']:+.3f}), "
             f"{c['prompts']} prompts x {c['samples']}: {c['up']} up / {c['down']} down, p "
             f"{c['p']:.2g}; sampled accuracy {c['pass_before']:.3f} -> {c['pass_after']:.3f} "
             f"({c['pass_after'] - c['pass_before']:+.3f})"
             + (f": {c['pass_up']} prompts up / {c['pass_down']} down, p {c['pass_p']:.2g}"
                if "pass_up" in c else "")
             for t, c in comp.items()]
    if not parts:
        return []
    return ["- **grpo vs sft, its objective on held-out prompts** (test split, sampled as the "
            "rollouts are; greedy accuracy is in the lines above): " + "; ".join(parts)]


def paired_lines(workdir: str, stages: Sequence[str],
                 tasks: Sequence[str] = ("reasoning", "vqa", "pope")) -> list[str]:
    """Per stage, its answers against the previous stage's on the same test items
    (`evals.paired`): items fixed and broken and the sign test's p-value."""
    from mmada_jax.evals.paired import paired_changes
    out = []
    for prev, cur in zip(stages, stages[1:]):
        a = read_jsonl(os.path.join(workdir, prev, "eval", "answers.jsonl"))
        b = read_jsonl(os.path.join(workdir, cur, "eval", "answers.jsonl"))
        changes = (paired_changes(a, b, tasks)
                   + paired_changes(a, b, ("reasoning",), field="sound", label="sound steps")
                   if a and b else [])
        if changes:
            out.append(f"- **{cur} vs {prev}**, item by item: "
                       + "; ".join(c.describe() for c in changes))
    if out:
        out = ["The same test items before and after each stage (fixed: wrong before, right "
               "after; p: exact two-sided sign test on the items that changed):", ""] + out
    return out


def heldout_reward_lines(heldout: dict) -> list[str]:
    """The stage's rewards on held-out prompts (`rl/heldout.py`: the starting and the trained
    policy sampled as the rollouts are, same prompts and keys) as a markdown table."""
    comp = heldout.get("compare") or {}
    if not comp:
        return []
    lines = ["UniGRPO's objective on held-out prompts (test split, sampled as the rollouts are; "
             "the SFT policy and the trained one on the same prompts with the same sampling "
             "keys; up / down: prompts whose mean reward, or share of passing samples, rose "
             "/ fell; p: exact two-sided sign test on them):", "",
             "| task | prompts x samples | reward: SFT -> UniGRPO | prompts up / down (p) | "
             "pass rate (sampled accuracy) | prompts up / down (p) |",
             "|---|---|---|---|---|---|"]
    for t, c in comp.items():
        pass_cell = (f"{c['pass_up']} / {c['pass_down']} ({c['pass_p']:.2g})"
                     if "pass_up" in c else "-")
        lines.append(f"| {t} | {c['prompts']} x {c['samples']} | {c['before']:.3f} -> "
                     f"{c['after']:.3f} ({c['after'] - c['before']:+.3f}) | {c['up']} / "
                     f"{c['down']} ({c['p']:.2g}) | {c['pass_before']:.3f} -> "
                     f"{c['pass_after']:.3f} ({c['pass_after'] - c['pass_before']:+.3f}) | "
                     f"{pass_cell} |")
    lines += ["", "The rollout metrics during training (each step draws new prompts, so a "
              "curve's trend is partly which prompts came up):", ""]
    return lines


def reward_window_table(hist: Sequence[dict], window: int | None = None) -> list[str]:
    """Markdown table of each per-task UniGRPO metric: mean over the first and the last
    `window` steps (default a quarter of the run, at least 1). Single steps draw a handful of
    prompts each, so one step's value says little."""
    n = len(hist)
    if not n:
        return []
    w = max(1, min(n, window or n // 4))
    keys = sorted({k for h in hist for k in h if "/" in k and not k.startswith("time")})

    def mean(rows, k):
        vals = [float(r[k]) for r in rows if k in r]
        return f"{sum(vals) / len(vals):.3f}" if vals else "-"

    lines = [f"| per task | steps 1-{w} (mean) | steps {n - w + 1}-{n} (mean) |",
             "|---|---|---|"]
    lines += [f"| {k} | {mean(hist[:w], k)} | {mean(hist[-w:], k)} |" for k in keys]
    return lines


def _short(s: str, n: int = 300) -> str:
    s = (s or "").replace("\n", " ").replace("`", "'")
    return s if len(s) <= n else s[:n] + " ..."


def _load(path: str) -> dict:
    """A JSON file the report reads ({} if absent); a corrupt one is an error naming it."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"report: {path} is not valid JSON ({e}); rerun the step that "
                             "writes it") from None
