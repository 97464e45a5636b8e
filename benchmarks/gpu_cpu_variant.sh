#!/usr/bin/env bash
# One variant of the cpu demo (`make demo`'s model, data and stages) run on the GPU at the step
# counts the 2-core CPU reaches in its budgets, so that several settings can be compared in one
# device session instead of one 19-minute CPU run each. Several run side by side as background
# jobs (benchmarks/gpu_background.sh; carry [".whl", "runs/cpu_assets"]):
#   bash benchmarks/gpu_background.sh start \
#     "base|bash benchmarks/gpu_cpu_variant.sh base" \
#     "lr1e3|bash benchmarks/gpu_cpu_variant.sh lr1e3 --config.stage_overrides.pretrain=optim.lr=1e-3"
# Arguments: NAME, then demo flags. Environment: ASSETS (a finished demo's assets: data and
# tokenizers, reused so every variant sees the same ones; default runs/cpu_assets: a finished
# cpu demo's assets/ without image_tokenizer_run/ and the *.npy code caches, which the demo
# rebuilds: it fits the device's 64 MiB tree),
# PRETRAIN_STEPS / SFT_STEPS / GRPO_STEPS (v21 on the 2-core box: 1447 / 2659 / 22),
# PROBE_N (scenes per split of the image-reading probe, 128).
# Writes /tmp/bg/NAME/run/: the demo's report.md and per-stage eval/, plus per stage
# mmu_reading_probe.json (`benchmarks/mmu_reading_probe.py`).
set -u
name=${1:?usage: gpu_cpu_variant.sh NAME [demo flags]}; shift
W=/tmp/bg/$name/run
mkdir -p $W
[ -d $W/assets ] || cp -r ${ASSETS:-runs/cpu_assets} $W/assets
python3 -m mmada_jax.demo --workdir $W --config experiments/demo.py \
  --config.steps.pretrain=${PRETRAIN_STEPS:-1447} --config.steps.sft=${SFT_STEPS:-2659} \
  --config.steps.grpo=${GRPO_STEPS:-22} --config.budget.pretrain=3000 \
  --config.budget.sft=3000 --config.budget.grpo=3000 "$@" || exit $?
[ "${PROBE_N:-128}" = 0 ] && exit 0
for s in pretrain sft grpo; do
  python3 benchmarks/mmu_reading_probe.py --workdir $W/$s --n ${PROBE_N:-128} \
    > $W/$s/mmu_reading_probe.json 2> $W/$s/mmu_reading_probe.err
done
