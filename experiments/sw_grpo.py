"""ShapesWorld UniGRPO (spec section 5) from the SFT stage. Variants: cpu (default), gpu, ci.

    python -m mmada_jax.grpo --config experiments/sw_grpo.py --workdir runs/demo/grpo \
        --config.rl.init_from=runs/demo/sft
    python -m mmada_jax.evaluate --config experiments/sw_grpo.py --workdir runs/demo/grpo
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sw_common import eval_section, parse_arg, rl_section, sw_config  # noqa: E402


def get_config(arg=None):
    variant = parse_arg(arg)
    c = sw_config("grpo", variant)
    c.rl = rl_section(variant)
    c.eval = eval_section(variant)
    return c
