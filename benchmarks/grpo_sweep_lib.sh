#!/usr/bin/env bash
# Shared by grpo_gpu_sweep.sh and grpo_seed_sweep.sh (source it): the eval sizes every sweep
# stage is scored with, and the 'name|overrides' specs of grpo_probe.sh for seeds x variants.

# 384 reasoning problems and 192 VQA questions; POPE and WISE off, 4 t2i prompts per tag
export DEMO_FLAGS="--config.eval.n_reasoning=384 --config.eval.n_vqa=192 --config.eval.n_pope=0 --config.eval.n_t2i_per_tag=4 --config.eval.n_wise=0"

# sweep_specs "SEEDS" "VARIANTS": prints one quoted grpo_probe.sh spec per seed x variant.
# A variant is 'name|overrides' or 'name@steps|overrides' (no spaces); each spec becomes
# 'name_sSEED[@steps]|rl.seed=SEED[;overrides]'.
sweep_specs() {
  local s v n o specs=""
  for s in $1; do
    for v in $2; do
      n=${v%%|*}; o=${v#*|}
      specs="$specs '${n%@*}_s$s${n#${n%@*}}|rl.seed=$s${o:+;$o}'"
    done
  done
  echo "$specs"
}
