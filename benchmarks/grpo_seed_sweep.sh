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
source benchmarks/grpo_sweep_lib.sh
if [ -z "${SKIP_SFT:-}" ]; then
  [ -d runs/gpu_bases/$B/sft/checkpoints ] || {
    echo "grpo_seed_sweep: runs/gpu_bases/$B has no sft/checkpoints (make it with benchmarks/slim_run.py)" >&2; exit 1; }
  source benchmarks/gpu_env.sh
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  mkdir -p /tmp/bg
  rm -rf /tmp/bg/${B}_sft && cp -r runs/gpu_bases/$B /tmp/bg/${B}_sft && rm -rf /tmp/bg/${B}_sft/sft/eval
  rc=0
  timeout ${SFT_T:-300} python3 -m mmada_jax.demo --workdir /tmp/bg/${B}_sft \
    --config experiments/demo.py:cpu $DEMO_FLAGS --stages sft > /tmp/bg/${B}_sft.log 2>&1 || rc=$?
  echo "exit $rc" > /tmp/bg/${B}_sft.rc
  [ $rc = 0 ] || { echo "grpo_seed_sweep: the SFT eval failed (exit $rc); see /tmp/bg/${B}_sft.log" >&2; tail -5 /tmp/bg/${B}_sft.log >&2; exit $rc; }
  grep "eval sft" /tmp/bg/${B}_sft.log | tail -1
elif [ ! -d /tmp/bg/${B}_sft ]; then
  echo "grpo_seed_sweep: SKIP_SFT is set but /tmp/bg/${B}_sft is not here (a fresh machine: run without it)" >&2; exit 1
fi
TAG=${TAG:-a}
bash benchmarks/gpu_background.sh start \
  "${B}_$TAG|R=/tmp/bg/${B}_$TAG BASE=/tmp/bg/${B}_sft GRPO=${GRPO:-45} VT=${VT:-560} bash benchmarks/grpo_probe.sh $(sweep_specs "$SEEDS" "$VARIANTS")"
