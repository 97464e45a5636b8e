"""The longer ShapesWorld run for one GPU: every stage at the 'gpu' sizes (its step caps, 20000
pretraining + 12000 fine-tuning + 300 UniGRPO steps, take about half an hour on one H100; with
the budgets in BENCHMARKS.md, 20-25 minutes on one H100 or H200: reasoning 0.92-0.99,
GenEval-style 0.80-0.97, VQA 0.76-0.95 on the test split over twenty-three runs; run 23, the default again: VQA 0.888). Pre-training and
fine-tuning keep a moving average of the parameters since run 19; VQA answers write no
color/shape pair ('color_first') since run 21, which reached VQA 0.909 (position 0.91, counting
0.85, color 0.97), reasoning 0.938 and GenEval-style 0.953 (BENCHMARKS.md).

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import demo_config
    return demo_config("gpu")
