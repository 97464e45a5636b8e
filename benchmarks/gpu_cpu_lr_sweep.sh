#!/usr/bin/env bash
# 2026-12-05: the cpu demo's learning rates, 'read' task and read lead-in, eight variants side by
# side on the GPU (benchmarks/gpu_cpu_variant.sh at the step counts the 2-core box reaches: v21's
# without read rows, v22's 1205 / 2286 with 4 per step, since its rows cost CPU steps). Why:
# trained on salient rows alone, the cpu model learns to read colors off the image at Adam
# 3e-4 .. 1e-3 and not at all at the pre-training stage's 2e-3 (`read_learnability.py --lr`).
# Device call (carry [".whl", "runs/cpu_assets"]):
#   [SWEEP=2] bash benchmarks/gpu_cpu_lr_sweep.sh; bash benchmarks/gpu_background.sh wait 540
EV="--config.eval.n_vqa=384 --config.eval.n_reasoning=192 --config.eval.n_pope=192"
EV="$EV --config.eval.n_t2i_per_tag=16 --config.eval.n_wise=48"
R=1205:2286  # pretrain:sft steps with 4 read rows per step (demo v22)
# with the 400-step read lead-in (~80 s of the 300 s pre-training budget on the 2-core box):
# ~1030 pre-training steps of the mix without read rows, ~860 with 4 per step
v() {  # name, pretrain:sft steps, pretrain overrides, sft overrides
  local steps=${2:-1447:2659}
  echo "$1|sleep 40; PRETRAIN_STEPS=${steps%%:*} SFT_STEPS=${steps##*:} bash benchmarks/gpu_cpu_variant.sh $1 $EV --config.stage_overrides.pretrain='$3' --config.stage_overrides.sft='$4'"
}
L=train.lead_in.steps=400
R6=1095:2070  # 6 read rows per step (estimated from v21 / v22's step counts)
R2=1320:2470
if [ "${SWEEP:-1}" = 1 ]; then
bash benchmarks/gpu_background.sh start \
  "tsb|python3 benchmarks/token_scores_bench.py --shape 192,160,2089 --dtype bfloat16 > /tmp/bg/tsb/out.txt 2>&1" \
  "$(v base '' '' '')" \
  "$(v p5s5r4 $R 'optim.lr=5e-4;tasks.read.batch_size=4' 'optim.lr=5e-4;tasks.read.batch_size=4')" \
  "$(v L_p10_s5 1030:2659 "$L;optim.lr=1e-3" 'optim.lr=5e-4')" \
  "$(v L_p10r4_s10r4 860:2286 "$L;optim.lr=1e-3;tasks.read.batch_size=4" 'tasks.read.batch_size=4')" \
  "$(v L_p10r4_s5r4 860:2286 "$L;optim.lr=1e-3;tasks.read.batch_size=4" 'optim.lr=5e-4;tasks.read.batch_size=4')" \
  "$(v L_p10r4_s5 860:2659 "$L;optim.lr=1e-3;tasks.read.batch_size=4" 'optim.lr=5e-4')" \
  "$(v L_p5r4_s5r4 860:2286 "$L;optim.lr=5e-4;tasks.read.batch_size=4" 'optim.lr=5e-4;tasks.read.batch_size=4')" \
  "$(v L_p10r2_s5r2 950:2470 "$L;optim.lr=1e-3;tasks.read.batch_size=2" 'optim.lr=5e-4;tasks.read.batch_size=2')"
else  # sweep 2: around p5s5r4, the best of sweep 1
bash benchmarks/gpu_background.sh start \
  "$(v p5s5r4_seed $R 'optim.lr=5e-4;tasks.read.batch_size=4;train.seed=10' 'optim.lr=5e-4;tasks.read.batch_size=4;train.seed=11')" \
  "$(v p5s5 '' 'optim.lr=5e-4' 'optim.lr=5e-4')" \
  "$(v p3s5r4 $R 'optim.lr=3e-4;tasks.read.batch_size=4' 'optim.lr=5e-4;tasks.read.batch_size=4')" \
  "$(v p10s5r4 $R 'optim.lr=1e-3;tasks.read.batch_size=4' 'optim.lr=5e-4;tasks.read.batch_size=4')" \
  "$(v p5s10r4 $R 'optim.lr=5e-4;tasks.read.batch_size=4' 'tasks.read.batch_size=4')" \
  "$(v p5s3r4 $R 'optim.lr=5e-4;tasks.read.batch_size=4' 'optim.lr=3e-4;tasks.read.batch_size=4')" \
  "$(v p5s5r6 $R6 'optim.lr=5e-4;tasks.read.batch_size=6' 'optim.lr=5e-4;tasks.read.batch_size=6')" \
  "$(v p5s5r2 $R2 'optim.lr=5e-4;tasks.read.batch_size=2' 'optim.lr=5e-4;tasks.read.batch_size=2')"
fi
