"""sw_gpu with 'readback' rows in the fine-tuning stage: a quarter of the image rows of the VQA
task have no image (mask placeholders) and a visible first part of the worked answer, so the end
of the answer (a count, a position) can only be read from the listing written before it
(`data.readback_prob`, `rows.readback_segment`). The test of whether counts and positions then
follow the model's own listing on test scenes (BENCHMARKS.md, "ShapesWorld on one GPU": run 5
counted shapes right 0.64 of the time and followed its listing in 79% of counting answers).

    python -m mmada_jax.demo --workdir runs/sw_gpu_readback --config experiments/sw_gpu_readback.py \
        --config.budget.image_tokenizer=120 --config.budget.pretrain=720 \
        --config.budget.sft=540 --config.budget.grpo=120
    # on the device, with the follow-up evals (train-split VQA, count consistency) in one job:
    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_readback.py"
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def get_config(arg=None):
    from mmada_jax.demo import demo_config
    c = demo_config("gpu")
    c.stage_overrides.sft = "data.readback_prob=0.25"
    return c
