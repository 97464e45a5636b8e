#!/usr/bin/env bash
# UniGRPO stage alone from v15's SFT checkpoint (runs/demo), one workdir per arm 'NAME|OVERRIDES'.
# As run on 2026-11-25 (from the repo root):
#   bash benchmarks/results/cpu_grpo_equations/run_arms.sh \
#     "eq1_s0|rl.tasks.reasoning.rewards.equations=1.0" \
#     "eq1_s1|rl.tasks.reasoning.rewards.equations=1.0;rl.seed=1" "base_s1|rl.seed=1"
#   bash benchmarks/results/cpu_grpo_equations/run_arms.sh \
#     "base_s2|rl.seed=2" "base_s3|rl.seed=3" "base_s4|rl.seed=4" "base_s5|rl.seed=5"
for spec in "$@"; do
  name=${spec%%|*}; ov=${spec#*|}
  w=runs/grpo_arms/$name
  rm -rf $w; mkdir -p $w
  cp -r runs/demo/assets runs/demo/pretrain runs/demo/sft runs/demo/demo_fingerprint.json $w/
  .venv/bin/python -m mmada_jax.demo --workdir $w --config experiments/demo.py \
    --config.stage_overrides.grpo="$ov" > $w.log 2>&1
  echo "$name: $(grep '^\[eval grpo' $w.log)"
done
