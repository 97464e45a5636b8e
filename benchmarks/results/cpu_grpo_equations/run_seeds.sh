#!/usr/bin/env bash
# UniGRPO stage alone from v15's SFT checkpoint, per arm: NAME|OVERRIDES
cd /work/main
for spec in "base_s2|rl.seed=2" "base_s3|rl.seed=3" "base_s4|rl.seed=4" "base_s5|rl.seed=5"; do
  name=${spec%%|*}; ov=${spec#*|}
  w=runs/grpo_arms/$name
  rm -rf $w; mkdir -p $w
  cp -r runs/demo/assets runs/demo/pretrain runs/demo/sft runs/demo/demo_fingerprint.json $w/
  .venv/bin/python -m mmada_jax.demo --workdir $w --config experiments/demo.py \
    --config.stage_overrides.grpo="$ov" > $w.log 2>&1
  echo "$name: $(grep '^\[eval grpo' $w.log)"
done
