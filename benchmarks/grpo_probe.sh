#!/usr/bin/env bash
# The CPU demo's sizes at the CPU's step counts on one GPU: pretrain + SFT once (the demo's own
# tokenizers trained first), then UniGRPO variants from that SFT checkpoint side by side, each
# evaluated on the demo's eval sets: which UniGRPO settings move held-out accuracy in the demo's
# budget. Runs in the foreground (GPU_ENV=1 sources benchmarks/gpu_env.sh first) or as a
# benchmarks/gpu_background.sh job. Output: $R/summary.txt.
#   R=/tmp/bg/gp PRE=880 SFT=1450 GRPO=15 bash benchmarks/grpo_probe.sh \
# (BASE=runs/demo instead starts every variant from that demo run's SFT checkpoint)
#     'gA|' 'gB|optim.lr=5e-5' 'gC|rl.beta=0.04;optim.lr=1e-4'
[ -n "${GPU_ENV:-}" ] && source benchmarks/gpu_env.sh
export XLA_PYTHON_CLIENT_PREALLOCATE=false
R=${R:-runs/gp}; mkdir -p $R
# the base run's flags go to every variant too (the demo refuses a workdir made with others)
C="--config experiments/demo.py:cpu ${DEMO_FLAGS:-} --config.steps.pretrain=${PRE:-880} \
  --config.steps.sft=${SFT:-1450} --config.image_tokenizer.steps=${TOK:-2800} \
  --config.budget.image_tokenizer=1000 --config.budget.pretrain=1000 --config.budget.sft=1000"
if [ -n "${BASE:-}" ]; then  # a finished demo workdir (pretrain + sft) made with default flags
  C="--config experiments/demo.py:cpu ${DEMO_FLAGS:-}"
  rm -rf $R/base; cp -r $BASE $R/base; rm -rf $R/base/grpo
else
  timeout 400 python3 -m mmada_jax.demo --workdir $R/base $C --stages pretrain,sft > $R/base.log 2>&1
  tail -n 2 $R/base.log
fi
names=(); declare -A n_steps
for spec in "$@"; do  # 'name|overrides' or 'name@steps|overrides'
  n=${spec%%|*}; o=${spec#*|}
  [[ $n == *@* ]] && { n_steps[${n%@*}]=${n#*@}; n=${n%@*}; }
  names+=($n)
  cp -r $R/base $R/$n
  timeout ${VT:-400} python3 -m mmada_jax.demo --workdir $R/$n $C --stages grpo \
    --config.steps.grpo=${n_steps[$n]:-${GRPO:-15}} --config.budget.grpo=1000 --config.stage_overrides.grpo="$o" \
    > $R/$n.log 2>&1 &
done
wait
R=$R python3 - "${names[@]}" <<'PY' | tee $R/summary.txt
import json, os, sys
R = os.environ["R"]
def pick(path):
    r = json.load(open(path))["results"]
    g = lambda t, k: float(r.get(t, {}).get(k, float("nan")))
    return {k: round(v, 3) for k, v in dict(
        reason=g("reasoning", "accuracy"), fmt=g("reasoning", "format_rate"),
        vqa=g("vqa", "accuracy"), pope=g("pope", "accuracy"), geneval=g("t2i", "overall")).items()}
for stage in ("pretrain", "sft"):  # a BASE copy may hold no eval of its own (slim_run.py)
    path = f"{R}/base/{stage}/eval/report.json"
    print(stage, pick(path) if os.path.exists(path) else "not evaluated here")
for n in sys.argv[1:]:
    try:
        print(n, pick(f"{R}/{n}/grpo/eval/report.json"))
    except Exception as e:  # pylint: disable=broad-except
        print(n, "failed", e)
PY
