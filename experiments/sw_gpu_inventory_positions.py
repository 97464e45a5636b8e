"""sw_gpu with the position and existence answers of GPU runs 2-20 (`data.shapesworld.vqa_cot =
'factored'`, `mmada_jax/data/shapesworld/vqa_cot.py`) in every stage's VQA rows: a position
answer starts with the full inventory of the scene ("I see a large white square in the top right
and a small red triangle in the center. The large white square is in the top right."), an
existence answer with the inventory and then the color narrowing. Counting and color answers are
the same in both.

The gpu default since run 21 is 'color_first', which writes no color/shape pair: every test scene
holds one pair that no training text contains, and with the inventory, position collapsed in
7 of 11 runs (11, 13, 15, 17-20: 0.52-0.82, against 0.94-0.98 in runs 10, 12, 14, 16), the model
writing the asked object's name in the held-out object's cell and answering with that cell
(`benchmarks/count_consistency.py`: `asked_seen`, `seen_at_held_out`). Run 21 with
'color_first': position 0.91, VQA 0.909 (BENCHMARKS.md, "ShapesWorld on one GPU").

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu_inventory_positions.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), "data.shapesworld.vqa_cot=factored")
