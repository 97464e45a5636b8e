"""sw_gpu with the fine-tuning stage's VQA rows trained by `text_answer_suffix` (a visible prefix
of each answer in half the rows; mmada_jax/objectives/text_suffix.py): the test of whether
counting answers then follow the worked listing (BENCHMARKS.md, "ShapesWorld on one GPU").
Measured on one H100 (run 5): they do not, much (79% against 76%); SFT counting 0.81 and position
0.88 against 0.87 and 0.97 with `text_answer` (run 3), so sw_gpu keeps `text_answer`.

    python -m mmada_jax.demo --workdir runs/sw_gpu_suffix --config experiments/sw_gpu_suffix.py \
        --config.budget.image_tokenizer=120 --config.budget.pretrain=720 \
        --config.budget.sft=540 --config.budget.grpo=120
"""

def get_config(arg=None):
    from mmada_jax.demo import demo_config
    c = demo_config("gpu")
    c.stage_overrides.sft = "tasks.mmu.objective=text_answer_suffix"
    return c
