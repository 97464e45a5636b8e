"""GPU run 6's config: sw_gpu with 'readback' rows in the fine-tuning stage (a quarter of the
VQA task's image rows without their image and with the first part of the worked answer
visible, cut anywhere in its last half: `data.readback_prob`, `rows.readback_segment`). Run 6
measured SFT VQA 0.924 (final 0.914), counts following the model's own listing in 85% of
answers against 76-79% before (BENCHMARKS.md, "ShapesWorld on one GPU"); the gpu variant's SFT
stage has used it by default since (`sw_common.py`), so this file now equals sw_gpu and stays as
the record of that run.

    # on the device, with the follow-up evals (train-split VQA, count consistency) in one job:
    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_readback.py"
"""

def get_config(arg=None):
    from mmada_jax.demo import demo_config
    c = demo_config("gpu")
    c.stage_overrides.sft = "data.readback_prob=0.25"
    return c
