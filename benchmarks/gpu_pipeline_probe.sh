#!/usr/bin/env bash
# One GPU call (device tool, carry [".whl"]): runs side by side on one GPU, then packs the small
# outputs into $OUT/probe.tar.gz:
#   1. tokenizer learning curves (benchmarks/tokenizer_sweep.py)
#   2. the CPU demo's model at given step caps (how far the `make demo` sizes get, fast)
#   3. the one-GPU ShapesWorld run (experiments/sw_gpu.py) squeezed into the call's minutes
# Usage: bash benchmarks/gpu_pipeline_probe.sh [pretrain sft grpo seconds for the gpu run]
# (GPU_RUN=none skips 3, CPU_RUNS=none skips 2, TOK_VARIANTS=none skips 1)
source benchmarks/gpu_env.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
R=runs/probe; mkdir -p $R
P=${1:-180}; S=${2:-70}; G=${3:-50}
T="timeout ${PROBE_TIMEOUT:-520}"
nvidia-smi --query-gpu=name --format=csv,noheader
[ "${TOK_VARIANTS:-}" = none ] || $T python3 benchmarks/tokenizer_sweep.py --out $R/tok --steps 1000 --eval_every 100 \
  ${TOK_VARIANTS:-base=} > $R/tok_sweep.log 2>&1 &
W="data.num_workers=8"
[ "${GPU_RUN:-}" = none ] || $T python3 -m mmada_jax.demo --workdir $R/gpu --config experiments/sw_gpu.py \
  --config.budget.image_tokenizer=90 --config.budget.pretrain=$P --config.budget.sft=$S \
  --config.budget.grpo=$G --config.stage_overrides.pretrain=$W --config.stage_overrides.sft=$W \
  > $R/gpu.log 2>&1 &
# the cpu demo sizes: CPU_RUNS="name:pretrain_steps:sft_steps:pretrain_overrides:sft_overrides:
# extra demo flags joined by '+' ..."
first=""
for spec in ${CPU_RUNS:-a:900:450::}; do
  [ "$spec" = none ] && continue
  IFS=: read n p s po so ex <<< "$spec"
  mkdir -p $R/cpu_$n
  if [ -n "$first" ] && [[ "$n" != *own ]]; then  # names ending in 'own' train their own tokenizer
    for i in $(seq 80); do ls $R/cpu_$first/assets/codes_train_*.npy >/dev/null 2>&1 && break; sleep 5; done
    sleep 2; cp -r $R/cpu_$first/assets $R/cpu_$n/
  fi
  $T python3 -m mmada_jax.demo --workdir $R/cpu_$n --config experiments/demo.py:cpu \
    --config.steps.pretrain=$p --config.steps.sft=$s --config.budget.pretrain=1000 \
    --config.budget.sft=1000 --config.stage_overrides.pretrain="$po" \
    --config.stage_overrides.sft="$so" ${ex//+/ } > $R/cpu_$n.log 2>&1 &
  [ -z "$first" ] && [[ "$n" != *own ]] && first=$n
done
[ -n "${EXTRA_CMD:-}" ] && { bash -c "$EXTRA_CMD" > $R/extra.log 2>&1 & }
wait
cd $R && tar czf $OUT/probe.tar.gz --exclude='*/checkpoints' --exclude='*/jax_cache' \
  --exclude='*/assets/data' --exclude='*.npy' --exclude='*_run' --exclude='*/tensorboard' .
ls -la $OUT
