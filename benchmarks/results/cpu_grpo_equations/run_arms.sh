#!/usr/bin/env bash
# UniGRPO stage alone from v15's SFT checkpoint, per arm: NAME|OVERRIDES
cd /work/main
for spec in "eq1_s0|rl.tasks.reasoning.rewards.equations=1.0" "eq1_s1|rl.tasks.reasoning.rewards.equations=1.0;rl.seed=1" "base_s1|rl.seed=1"; do
  name=${spec%%|*}; ov=${spec#*|}
  w=runs/grpo_arms/$name
  rm -rf $w; mkdir -p $w
  cp -r runs/demo/assets runs/demo/pretrain runs/demo/sft runs/demo/demo_fingerprint.json $w/
  .venv/bin/python -m mmada_jax.demo --workdir $w --config experiments/demo.py \
    --config.stage_overrides.grpo="$ov" > $w.log 2>&1
  echo "$name: $(grep '^\[eval grpo' $w.log)"
done
