#!/usr/bin/env bash
# Source on the GPU machine: installs the carried wheels (.whl) and this package into /tmp/site.
# Usage (device tool, carry [".whl"]): source benchmarks/gpu_env.sh && python3 benchmarks/x.py
# Make .whl with `bash ../shared/tools/gpu-wheels.sh tensorboardX`: the image lacks tensorboardX
# too, and without it the GPU runs write no TensorBoard scalars (run 18's log says so).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . >/dev/null 2>&1 \
  || echo "gpu_env: package install failed" >&2
export PYTHONPATH=/tmp/site:$PYTHONPATH
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
