"""sw_gpu with position answers whose inventory names the asked object last
(`data.shapesworld.vqa_cot = 'asked_last'`, `mmada_jax/data/shapesworld/vqa_cot.py`), in every
stage's VQA rows; counting, color and existence answers are the 'factored' ones (the gpu default
of runs 2-20).

Aimed at the GPU runs whose position accuracy collapsed (runs 13, 15, 17, 18, 19: 0.52-0.82
against 0.94-0.98 in runs 10, 12, 14, 16): they name the asked object in their listing (run 19: 81%)
and then copy the *last* listed object's cell into the conclusion (53% of position answers).
Listed last, the asked object's cell is the one the conclusion repeats. Run 20 (2026-12-06):
position 0.56 after fine-tuning, collapsed again. The conclusion did repeat the last cell, but
the listing had written the asked object's name in the cell of the test scene's held-out
color/shape pair (`benchmarks/results/sw_gpu_run20_asked_last/`). Run 21 with 'color_first',
which writes no pair (the gpu default since): position 0.91.

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu_asked_last.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), "data.shapesworld.vqa_cot=asked_last")
