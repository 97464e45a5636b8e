#!/usr/bin/env bash
# One GPU call (device tool, carry [".whl"]): the CPU demo sizes through pretrain + SFT once, then
# UniGRPO variants from the same SFT checkpoint side by side, each evaluated on larger eval sets
# (72 reasoning, 72 VQA): which UniGRPO settings move held-out accuracy in the demo's budget.
source benchmarks/gpu_env.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
R=runs/gp; mkdir -p $R
C="--config experiments/demo.py:cpu --config.eval.n_reasoning=72 --config.eval.n_vqa=72 --config.eval.n_t2i_per_tag=4"
timeout 300 python3 -m mmada_jax.demo --workdir $R/base $C --config.steps.pretrain=880 --config.steps.sft=1000 \
  --config.budget.pretrain=1000 --config.budget.sft=1000 --stages pretrain,sft > $R/base.log 2>&1
tail -n 2 $R/base.log
run() { n=$1; shift; cp -r $R/base $R/$n; timeout 200 python3 -m mmada_jax.demo --workdir $R/$n $C --stages grpo "$@" > $R/$n.log 2>&1; }
run gA --config.steps.grpo=18 &
run gB --config.steps.grpo=18 --config.stage_overrides.grpo="optim.lr=5e-5" &
run gC --config.steps.grpo=18 --config.stage_overrides.grpo="rl.text_sampler.temperature=0.7" &
run gD --config.steps.grpo=9 --config.stage_overrides.grpo="rl.tasks.reasoning.prompts=4;rl.tasks.vqa.prompts=4" &
run gE --config.steps.grpo=18 --config.stage_overrides.grpo="optim.lr=1e-4" &
wait
python3 - <<'PY'
import json
base = json.load(open("runs/gp/base/sft/eval/report.json"))["results"]
def pick(r):
    g = lambda t, k: float(r.get(t, {}).get(k, float("nan")))
    return dict(reason=g("reasoning", "accuracy"), fmt=g("reasoning", "format_rate"), vqa=g("vqa", "accuracy"), pope=g("pope", "accuracy"), geneval=g("t2i", "overall"))
print("sft", {k: round(v, 3) for k, v in pick(base).items()})
for n in "gA gB gC gD gE".split():
    try:
        r = json.load(open(f"runs/gp/{n}/grpo/eval/report.json"))["results"]
        print(n, {k: round(v, 3) for k, v in pick(r).items()})
    except Exception as e:
        print(n, "failed", e)
PY
for n in gA gB gC gD gE; do tail -n 2 $R/$n.log | head -1; done
