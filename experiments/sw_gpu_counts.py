"""The question-mix variants of sw_gpu (only the fine-tuning stage's VQA training rows change;
the eval's questions are the same, and so are UniGRPO's VQA prompts, which the trainer draws
uniformly with the eval's generator, `evals.shapesworld_eval.vqa_items`: the UniGRPO stage's
config carries the settings, its rollouts do not use them).

  ''          the gpu default since run 14 (`sw_common.GPU_VQA_KIND_WEIGHTS`): questions drawn
              count 0.4, color / position / existence / caption 0.15 each; of the counts, all
              shapes 0.2, one color 0.35, one shape 0.45. Shape counts are 18% of the VQA rows.
  'position'  count 0.4 with position kept at 0.2 (existence 0.15, caption 0.1, color 0.15).
  'uniform'   every kind 0.2 and every count target 1/3 (the default of runs 1-11).
  'repeats'   the default's questions, and 0.6 of the one-color / one-shape counts ask about a
              color or shape the scene holds two or more of, where it has one
              (`data.shapesworld.vqa_count_repeats`): answers of 2+ go from 10% to 22% of the
              color counts and from 20% to 41% of the shape counts. Runs 12-14 answered color
              counts of 2-3 right 0-1 times of 4-5 and shape counts of 2 5-7 of 11: most of
              their count errors, many after a listing that names both objects. Run 15 (one
              H200): counts of 2-3 colors 4/5, but one-object counts fell (colors 21/22 ->
              11/22, shapes 10/12 -> 5/12) and position collapsed (0.64): final VQA 0.789.
              Not adopted.

Why: over eleven GPU runs, counting a subset ("how many circles", "how many blue shapes") was
the one VQA skill far below target, as wrong on train-split scenes as on test scenes, so
under-learned rather than failing to generalize (BENCHMARKS.md).

Results (one H100, BENCHMARKS.md): '' run 12 final VQA 0.917, run 14 **0.948** (counting 0.86
and 0.90 on test scenes at SFT); 'position' run 13 0.893 (its pretraining was the weakest of
fourteen: GenEval-style 0.77 after it); 'uniform' runs 6, 9, 10 0.914 / 0.914 / 0.883.

    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_counts.py:uniform"
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sw_common import GPU_VQA_COUNT_WEIGHTS, GPU_VQA_KIND_WEIGHTS  # noqa: E402

UNIFORM = {}  # empty weights: uniform draws, question for question those of runs 1-11
WEIGHTS = {
    "": (GPU_VQA_KIND_WEIGHTS, GPU_VQA_COUNT_WEIGHTS),
    "position": (dict(count=0.4, color=0.15, position=0.2, exists=0.15, caption=0.1),
                 GPU_VQA_COUNT_WEIGHTS),
    "uniform": (UNIFORM, UNIFORM),
    "repeats": (GPU_VQA_KIND_WEIGHTS, GPU_VQA_COUNT_WEIGHTS),
}
REPEATS = {"repeats": 0.6}  # data.shapesworld.vqa_count_repeats; 0 for the others


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    if (arg or "") not in WEIGHTS:
        raise ValueError(f"sw_gpu_counts: unknown argument {arg!r}; known: '' (the gpu "
                         "default), 'position', 'uniform', 'repeats'")
    kinds, targets = WEIGHTS[arg or ""]
    dc = demo_config("gpu")
    add_stage_override(dc, f"data.shapesworld.vqa_kind_weights={dict(kinds)!r}", ("sft", "grpo"))
    if arg in REPEATS:
        add_stage_override(dc, f"data.shapesworld.vqa_count_repeats={REPEATS[arg]!r}",
                           ("sft", "grpo"))
    return add_stage_override(dc, f"data.shapesworld.vqa_count_weights={dict(targets)!r}",
                              ("sft", "grpo"))
