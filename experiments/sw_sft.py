"""ShapesWorld stage 'sft' (see sw_common.py). Variants: cpu (default, the demo), gpu, ci.

    python -m mmada_jax.demo --workdir runs/demo              # runs every stage, this one included
    python -m mmada_jax.evaluate --config experiments/sw_sft.py --workdir runs/demo/sft
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sw_common import parse_arg, sw_config  # noqa: E402


def get_config(arg=None):
    return sw_config("sft", parse_arg(arg))
