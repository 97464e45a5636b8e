"""The cpu demo with N 'read' rows per step in pre-training and SFT (`experiments/sw_cpu_read.py:N`;
the default config has 4). N = 0 is the previous cpu setting, demo v21's: no read rows and
learning rates of 2e-3 (pre-training) and 1e-3 (SFT), at which the model never learns to read
colors off the image (BENCHMARKS.md, "The demo").

Read rows are salient rows (captions and worked VQA answers with every color, shape and size
word masked and the rest shown, `text_answer_full`; `data.rows.salient_segment`).

    python -m mmada_jax.demo --workdir runs/demo_v21cfg --config experiments/sw_cpu_read.py:0
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    from sw_common import CPU_READ_ROWS
    n = int(arg if arg not in (None, "") else CPU_READ_ROWS)
    if n < 0:
        raise ValueError(f"sw_cpu_read.py: read rows per step must be >= 0, got {n}")
    dc = add_stage_override(demo_config("cpu"), f"tasks.read.batch_size={n}", ("pretrain", "sft"))
    if n == 0:
        add_stage_override(dc, "optim.lr=2e-3", ("pretrain",))
        add_stage_override(dc, "optim.lr=1e-3", ("sft",))
    return dc
