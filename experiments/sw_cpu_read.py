"""The cpu demo with its 'read' task on: 4 rows per step in pre-training and SFT of salient rows
(captions and worked VQA answers with every color, shape and size word masked and the rest
shown, `text_answer_full`; `data.rows.salient_segment`).

Why: the cpu demo's model reads no colors off images (`benchmarks/mmu_reading_probe.py`: train-
split color words at chance at every stage, and the same with another scene's image). Trained on
salient rows alone from scratch, the same model reads them 0.76 of the time after 400 steps
(`benchmarks/read_learnability.py`); 800 pre-training steps with this task: 0.25 with the image
now used. Result in the demo (v22, fresh clone, 18.9 min; BENCHMARKS.md): not kept. The extra
rows cost 16% of the fine-tuning steps, the model read no better after SFT, and VQA fell 0.26
-> 0.13, t2i object F1 0.40 -> 0.23.

    python -m mmada_jax.demo --workdir runs/demo_read --config experiments/sw_cpu_read.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("cpu"), f"tasks.read.batch_size={int(arg or 4)}",
                              ("pretrain", "sft"))
