"""MMaDA-8B stage 1.3 at the spec's global batch (spec section 3), mesh fsdp=-1.

    python -m mmada_jax.compile --config experiments/stage1_3_8b.py --topology v5p-128
    python -m mmada_jax.train --config experiments/stage1_3_8b.py --workdir gs://.../stage1_3
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage_common_8b import stage_config  # noqa: E402


def get_config(arg=None):
    return stage_config("1.3")
