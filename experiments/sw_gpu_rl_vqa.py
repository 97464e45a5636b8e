"""sw_gpu with a UniGRPO stage aimed at VQA (`experiments/sw_gpu_rl_vqa.py`).

In fifteen gpu runs UniGRPO left VQA where fine-tuning put it or lowered it a little (final
minus SFT -0.023 to +0.005): its VQA prompts were a third color questions, which the model
answers right 0.94-0.98 of the time, and a group of 8 right answers carries no signal. Here:
- the VQA rollout prompts are counting and position questions only (`rl.tasks.vqa.kinds`), the
  two kinds whose answers fail to follow the model's own listing (runs 12-16);
- 16 VQA prompts per step, 4 reasoning, 4 t2i (the default's 8 / 8 / 8: the same rollouts);
- the cpu demo's sound-work rewards: `equations` (reasoning) and `listing` (true cell claims in
  the think block, VQA) at weight 1.

Result (GPU run 17, one H200, shortened budgets; BENCHMARKS.md): over 148 UniGRPO steps the
rollout rewards stayed flat (VQA correctness 1.67 -> 1.64 of 2, KL 0.004), and held-out VQA
went 0.818 -> 0.794 (reasoning 0.953 -> 0.945). Not adopted.

    BUDGET_GRPO=240 bash benchmarks/gpu_background.sh start \\
      "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_rl_vqa.py"
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

RL_SETTINGS = ("rl.tasks.vqa.kinds=count,position", "rl.tasks.vqa.prompts=16",
               "rl.tasks.reasoning.prompts=4", "rl.tasks.t2i.prompts=4",
               "rl.tasks.reasoning.rewards.equations=1.0", "rl.tasks.vqa.rewards.listing=1.0")


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), ";".join(RL_SETTINGS), ("grpo",))
