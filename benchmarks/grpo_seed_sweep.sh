#!/usr/bin/env bash
# UniGRPO variants of the cpu demo's stage, several rollout seeds each, from one demo run's SFT
# checkpoint on one GPU (2026-12-06, twenty-eighth session; the earlier sweep of settings is
# grpo_gpu_sweep.sh). First the SFT checkpoint is evaluated once where it lands (which also
# builds the ShapesWorld files and fills the compilation cache every variant then copies), then
# the variants run side by side as one background job (benchmarks/gpu_background.sh).
# Device call (carry [".whl", "runs/gpu_bases"]; runs/gpu_bases/v47 from
# `python benchmarks/slim_run.py --run RUN --out runs/gpu_bases/v47 --stage sft`):
#   B=v47 GRPO=45 SEEDS="1 2 3" VARIANTS="d| T04|rl.text_sampler.temperature=0.4 L90@90|" \
#     bash benchmarks/grpo_seed_sweep.sh && bash benchmarks/gpu_background.sh wait 330
# (12 stages side by side took ~4.5 minutes on one H100.) A later call with SKIP_SFT=1 TAG=b
# and other seeds or variants reuses /tmp/bg/$B_sft while the machine is held. Results:
# /tmp/bg/$B_sft (the SFT eval) and /tmp/bg/$B_$TAG/NAME_sSEED/ (grpo/eval/answers.jsonl,
# grpo/heldout_rewards.json); 2026-12-06: benchmarks/results/cpu_grpo_v47_gpu_sweep/.
set -e
B=${B:?base name under runs/gpu_bases}
SEEDS=${SEEDS:-1 2 3 4}
VARIANTS=${VARIANTS:-"d|"}
export DEMO_FLAGS="--config.eval.n_reasoning=384 --config.eval.n_vqa=192 --config.eval.n_pope=0 --config.eval.n_t2i_per_tag=4 --config.eval.n_wise=0"
source benchmarks/gpu_env.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -z "${SKIP_SFT:-}" ]; then
  mkdir -p /tmp/bg
  rm -rf /tmp/bg/${B}_sft && cp -r runs/gpu_bases/$B /tmp/bg/${B}_sft && rm -rf /tmp/bg/${B}_sft/sft/eval
  timeout ${SFT_T:-300} python3 -m mmada_jax.demo --workdir /tmp/bg/${B}_sft \
    --config experiments/demo.py:cpu $DEMO_FLAGS --stages sft > /tmp/bg/${B}_sft.log 2>&1
  echo "exit $?" > /tmp/bg/${B}_sft.rc
  grep "eval sft" /tmp/bg/${B}_sft.log | tail -1
fi
specs=""
for s in $SEEDS; do
  for v in $VARIANTS; do
    n=${v%%|*}; o=${v#*|}
    specs="$specs '${n%@*}_s$s${n#${n%@*}}|rl.seed=$s${o:+;$o}'"
  done
done
TAG=${TAG:-a}
bash benchmarks/gpu_background.sh start \
  "${B}_$TAG|R=/tmp/bg/${B}_$TAG BASE=/tmp/bg/${B}_sft GRPO=${GRPO:-47} VT=${VT:-560} bash benchmarks/grpo_probe.sh $specs"
