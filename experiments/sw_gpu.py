"""The longer ShapesWorld run for one GPU: every stage at the 'gpu' sizes (its step caps, 20000
pretraining + 12000 fine-tuning + 300 UniGRPO steps, take about half an hour on one H100; with
the budgets in BENCHMARKS.md, 20-25 minutes on one H100 or H200: reasoning 0.92-0.99,
GenEval-style 0.80-0.97, VQA 0.78-0.95 on the test split over nineteen runs; 0.917, 0.948,
0.893 and 0.786 in the four runs of today's default question mix, the last with position
answers collapsed; pre-training and fine-tuning keep a moving average of the parameters since
run 19: BENCHMARKS.md).

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import demo_config
    return demo_config("gpu")
