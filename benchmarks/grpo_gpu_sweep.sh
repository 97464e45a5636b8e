#!/usr/bin/env bash
# 2026-12-06 (twenty-seventh session): which UniGRPO settings make the cpu demo's stage gain
# held-out reasoning reliably. On the 2-core box one stage and its eval take ~5 minutes, so the
# seeds needed to tell a +0.02 effect from the spread never fit a session; on one GPU dozens run
# side by side. Every variant runs the cpu demo's UniGRPO stage at the step count the box
# reaches in its 180 s (35-37 in v40-v42, 45 with `rl.update_quantum`; GRPO=45) from a
# finished demo run's SFT checkpoint (`benchmarks/slim_run.py` copies, runs/gpu_bases/NAME),
# then the demo's held-out reward eval and the eval on 384 reasoning problems and 192 VQA questions; each base's SFT checkpoint is
# evaluated the same way once (R/NAME_sft).
# Device call (carry [".whl", "runs/gpu_bases"]):
#   bash benchmarks/grpo_gpu_sweep.sh; bash benchmarks/gpu_background.sh wait 560
# Results: /tmp/bg/NAME/summary.txt and each variant's grpo/eval/answers.jsonl, compared item by
# item on this machine (`mmada_jax.evals.paired`).
SEEDS=${SEEDS:-1 2 3}
VARIANTS=${VARIANTS:-"d| m2|rl.mask_samples=2 mu4|rl.num_iterations=4 T1|rl.text_sampler.temperature=1.0 rloo|rl.advantage_estimator=rloo L90@90|"}
BASES=${BASES:-"v42 v41"}
source benchmarks/grpo_sweep_lib.sh
jobs=()
specs=$(sweep_specs "$SEEDS" "$VARIANTS")
for b in $BASES; do
  jobs+=("$b|R=/tmp/bg/$b BASE=runs/gpu_bases/$b GRPO=${GRPO:-45} bash benchmarks/grpo_probe.sh $specs")
  jobs+=("${b}_sft|rm -rf /tmp/bg/${b}_sft && cp -r runs/gpu_bases/$b /tmp/bg/${b}_sft && rm -rf /tmp/bg/${b}_sft/sft/eval && python3 -m mmada_jax.demo --workdir /tmp/bg/${b}_sft --config experiments/demo.py:cpu $DEMO_FLAGS --stages sft")
done
bash benchmarks/gpu_background.sh start "${jobs[@]}"
