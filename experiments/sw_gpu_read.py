"""sw_gpu with N 'read' rows per fine-tuning step (`experiments/sw_gpu_read.py:N`, default 32;
the gpu default has none, `sw_common.GPU_READ_ROWS`).

Read rows are salient rows of worked VQA answers and captions (half each): every color, shape,
size and cell word ("top", "left", "center", ...) masked and scored, the rest shown, the image
kept (`text_answer_full`, `data.rows.salient_segment`; never readback rows). In the cpu demo the
cell words in these rows took position answers from 0.09 to 0.72 (BENCHMARKS.md, "The demo").
On the GPU, position is the VQA skill that varies most from run to run: run 15 listed the asked
object in the right cell 98% of the time and then named another cell in half of its answers.
A read row scores the answer's cell word with the listing's cell words masked too, so it can
only be read off the image.

Result (GPU run 16, one H100, BENCHMARKS.md; its UniGRPO stage was cut off by the session's
device time): SFT VQA 0.924 (color / count / position 0.98 / 0.86 / 0.94), as run 12 of the
default and below run 14's 0.948; position answers follow their listing 0.82, as in run 14;
POPE F1 0.864, the best of sixteen runs. Not adopted.

    bash benchmarks/gpu_background.sh start \\
      "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_read.py"
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT_ROWS = 32


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    n = int(arg if arg not in (None, "") else DEFAULT_ROWS)
    if n < 0:
        raise ValueError(f"sw_gpu_read.py: read rows per step must be >= 0, got {n}")
    return add_stage_override(demo_config("gpu"), f"tasks.read.batch_size={n}", ("sft",))
