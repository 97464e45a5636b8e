#!/usr/bin/env bash
# Jobs that outlive one device call (each call is at most 10 minutes; a machine stays held up to
# 30): `start` launches them in their own process sessions under /tmp/bg, later calls `snap` (pack
# what they wrote so far into $OUT) or `wait` (until all are done or N seconds, then snap).
#   bash benchmarks/gpu_background.sh start  'name|command' ...   (carry [".whl", ...])
#   bash benchmarks/gpu_background.sh wait 560
# Each job's output: /tmp/bg/NAME.log; a job should write its files under /tmp/bg/NAME/.
# Issue each `wait` call alone and at once after the last one returns: a machine idle for ~30 s
# is given back, and the job with it (one run was lost that way on 2026-11-24).

BG=/tmp/bg
mode=$1; shift
case $mode in
start)
  source benchmarks/gpu_env.sh
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  mkdir -p $BG
  nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
  for spec in "$@"; do
    name=${spec%%|*}; cmd=${spec#*|}
    mkdir -p $BG/$name
    setsid nohup bash -c "$cmd; echo \"exit \$?\" > $BG/$name.rc" > $BG/$name.log 2>&1 < /dev/null &
    echo "started $name: $cmd"
  done
  ;;
wait)
  end=$(( $(date +%s) + ${1:-560} ))
  while [ "$(date +%s)" -lt $end ]; do
    running=0
    for l in $BG/*.log; do [ -e "${l%.log}.rc" ] || running=1; done
    [ $running = 0 ] && break
    sleep 10
  done
  ;;
esac
if [ "$mode" != start ]; then
  for l in $BG/*.log; do
    n=$(basename $l .log); echo "== $n $(cat $BG/$n.rc 2>/dev/null || echo running)"
    grep -v "^WARNING:absl" $l | tail -3
  done
  cd $BG && tar czf $OUT/bg.tar.gz --exclude='*/checkpoints' --exclude='*/jax_cache' \
    --exclude='*/assets' --exclude='*.npy' --exclude='*_run' --exclude='*/tensorboard' . \
    && ls -la $OUT
fi
