#!/usr/bin/env bash
# 2026-12-05 (twentieth session): what makes the cpu demo's fine-tuned arithmetic reliably strong.
# Fresh clones of one config reach 0.71-0.87 true equations after SFT (addition and subtraction
# facts 0.49-0.79, the "N times as many" ones 0.99-1.0), and UniGRPO raises held-out reasoning
# only from the stronger ones (BENCHMARKS.md, "The demo"). Eight variants side by side on the GPU
# at the step counts the 2-core box reaches (v33: 1185 pre-training, 2206 fine-tuning, 38 UniGRPO
# steps), two seeds each (the second changes the pre-training, fine-tuning and rollout seeds),
# every stage evaluated on 384 reasoning problems and 384 VQA questions:
#   base     the default
#   lmc2     the reasoning chats' loss weighted 2 in fine-tuning (`tasks.lm.coeff`; no step cost)
#   lmc3     weighted 3
#   lm11     11 reasoning rows per fine-tuning step instead of 7 (22 problems instead of 14); the
#            2-core box takes 1.29x as long a step (`cpu_step_bench.py`: 271 vs 211 ms), so 1710
# Device call (carry [".whl", "runs/cpu_assets"]):
#   bash benchmarks/gpu_cpu_arith_sweep.sh; bash benchmarks/gpu_background.sh wait 560
EV="--config.eval.n_vqa=384 --config.eval.n_reasoning=384 --config.eval.n_pope=96"
EV="$EV --config.eval.n_t2i_per_tag=16 --config.eval.n_wise=16"
P=${PRETRAIN_STEPS:-1185}
G=${GRPO_STEPS:-40}
S2P="train.seed=10;data.seed=10"
S2S="train.seed=11;data.seed=11"
S2G="rl.seed=7"
v() {  # name, sft steps, pretrain overrides, sft overrides, grpo overrides
  echo "$1|sleep 20; PRETRAIN_STEPS=$P SFT_STEPS=$2 GRPO_STEPS=$G PROBE_N=0 bash benchmarks/gpu_cpu_variant.sh $1 $EV --config.stage_overrides.pretrain='$3' --config.stage_overrides.sft='$4' --config.stage_overrides.grpo='$5'"
}
if [ "${SWEEP:-1}" = 1 ]; then
bash benchmarks/gpu_background.sh start \
  "$(v base 2206 '' '' '')" \
  "$(v base_s2 2206 "$S2P" "$S2S" "$S2G")" \
  "$(v lmc2 2206 '' 'tasks.lm.coeff=2.0' '')" \
  "$(v lmc2_s2 2206 "$S2P" "$S2S;tasks.lm.coeff=2.0" "$S2G")" \
  "$(v lmc3 2206 '' 'tasks.lm.coeff=3.0' '')" \
  "$(v lmc3_s2 2206 "$S2P" "$S2S;tasks.lm.coeff=3.0" "$S2G")" \
  "$(v lm11 1710 '' 'tasks.lm.batch_size=11' '')" \
  "$(v lm11_s2 1710 "$S2P" "$S2S;tasks.lm.batch_size=11" "$S2G")"
fi
