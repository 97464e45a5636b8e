"""The longer ShapesWorld run for one GPU: every stage at the 'gpu' sizes.

    python -m mmada_jax.demo --workdir runs/sw_gpu --config experiments/sw_gpu.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import demo_config
    return demo_config("gpu")
