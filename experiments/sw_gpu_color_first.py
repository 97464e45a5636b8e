"""sw_gpu with position answers that list only the shapes of the asked color, by size, shape and
cell, and conclude by size and shape, and existence answers without the inventory
(`data.shapesworld.vqa_cot = 'color_first'`, `mmada_jax/data/shapesworld/vqa_cot.py`), in every
stage's VQA rows; counting and color answers are the default ('factored') ones.

Aimed at the GPU runs whose position accuracy collapsed (runs 11, 13, 15, 17-20: 0.52-0.82
against 0.94-0.98 in runs 10, 12, 14, 16). Every test scene holds a color/shape pair that no
training text contains, and the default position answer starts with a full inventory, which has
to write it. The collapsed runs write the *asked* object's name in that object's cell instead
and answer with it: asked about a training pair in scenes of 2-4 objects, runs 19 / 20 answer 30
of 74 right and 24 / 26 of them with the held-out object's cell, where run 14 answers 73 of 74
(`benchmarks/count_consistency.py`, `asked_seen` / `seen_at_held_out`). Asked about the held-out
pair, they conclude with a pair they have seen instead; some (13, 18, 20) also answer "no" to
most existence questions about the held-out object present in the scene. This style writes no
pair at all.

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu_color_first.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), "data.shapesworld.vqa_cot=color_first")
