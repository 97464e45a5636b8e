#!/usr/bin/env bash
# The one-GPU ShapesWorld run and every follow-up eval in one background job, so that nothing
# needs a second lease (a machine is held at most 30 minutes; the run takes about 25).
#   device call 1 (carry [".whl"]):
#     bash benchmarks/gpu_background.sh start "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu.py"
#   then `bash benchmarks/gpu_background.sh wait 570` calls, each issued at once after the last
#   (the machine is given back after ~30 s idle).
# Extra arguments go to the demo (e.g. --config.stage_overrides.sft='...'). Environment: WORKDIR
# (default /tmp/bg/gpu/run), BUDGET_{TOKENIZER,PRETRAIN,SFT,GRPO} (seconds), N_VQA (384),
# MAX_OBJECTS (4), SKIP_DEMO=1 (only the follow-up evals of a finished run), PROBES: extra VQA
# re-evaluations of the SFT checkpoint while it is still on the machine (checkpoints do not come
# back), 'NAME:EVAL_SETS;NAME:EVAL_SETS', e.g.
#   PROBES='b4:text_sampler.block_length=4;t07:text_sampler.temperature=0.7'
# writes S/probe_NAME/ and its count consistency in S/count_consistency.txt for each stage S in
# PROBE_STAGES (default 'sft'; 'sft grpo' probes the final model too).
# Writes under WORKDIR (the demo's workdir), per stage S in sft, grpo:
#   S/eval/                 the demo's eval on the test split (held-out pairs in every scene)
#   S/eval_train/           VQA on train-split scenes (no held-out pair): in-distribution accuracy
#   S/count_consistency.txt do counts follow the model's own listing (test, then train scenes)
set -u
cfg=${1:?usage: gpu_sw_run.sh CONFIG [demo flags]}; shift
W=${WORKDIR:-/tmp/bg/gpu/run}; N=${N_VQA:-384}; M=${MAX_OBJECTS:-4}
[ "${SKIP_DEMO:-0}" = 1 ] || python3 -m mmada_jax.demo --workdir $W --config "$cfg" \
  --config.budget.image_tokenizer=${BUDGET_TOKENIZER:-120} --config.budget.pretrain=${BUDGET_PRETRAIN:-720} \
  --config.budget.sft=${BUDGET_SFT:-540} --config.budget.grpo=${BUDGET_GRPO:-120} "$@" || exit $?
for s in sft grpo; do
  python3 benchmarks/eval_demo_stage.py --config "$cfg" --workdir $W --stage $s --set split=train \
    --set n_reasoning=0 --set n_vqa=$N --set n_pope=0 --set n_t2i_per_tag=0 --set n_wise=0 \
    --out $W/$s/eval_train
  { python3 benchmarks/count_consistency.py $W/$s/eval/answers.jsonl --max_objects $M
    python3 benchmarks/count_consistency.py $W/$s/eval_train/answers.jsonl --max_objects $M \
      --split train; } > $W/$s/count_consistency.txt 2>&1
done
IFS=';' read -ra probes <<< "${PROBES:-}"
for s in ${PROBE_STAGES:-sft}; do
  for p in "${probes[@]}"; do
    name=${p%%:*}; sets=()
    for kv in ${p#*:}; do sets+=(--set "$kv"); done
    python3 benchmarks/eval_demo_stage.py --config "$cfg" --workdir $W --stage $s "${sets[@]}" \
      --set n_reasoning=0 --set n_vqa=$N --set n_pope=0 --set n_t2i_per_tag=0 --set n_wise=0 \
      --out $W/$s/probe_$name
    python3 benchmarks/count_consistency.py $W/$s/probe_$name/answers.jsonl --max_objects $M \
      >> $W/$s/count_consistency.txt 2>&1
  done
done
