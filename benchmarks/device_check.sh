#!/usr/bin/env bash
# The checks a CUDA machine is for, as one short script: the tests marked `device` (their cuda
# cases) and the population benchmark on the device, P = 1, 27 and 256.
#
#   benchmarks/device_check.sh [out_dir]        # logs: env.txt, tests.log, population.log
#
# Runs under ${PYTHON:-python3}, which must hold torch with CUDA and mesalab's study extras
# (hydra-core, omegaconf; W&B is not needed: it is disabled). From a source checkout:
# PYTHONPATH=<checkout> (mesalab/__init__.py finds the packages at its top).
# Knobs: DEVICE (cuda), SIZES (1,27,256), UPDATES (3), TEST_TIMEOUT and BENCH_TIMEOUT (seconds).
set -u
out=${1:-device_check}
mkdir -p "$out"
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$py" -c "import torch, transformers; print('torch', torch.__version__, 'cuda',
torch.version.cuda, 'available', torch.cuda.is_available(), 'transformers',
transformers.__version__)"
} 2>&1 | tee "$out/env.txt"

echo "== tests marked device, $device cases"
t0=$(date +%s)
# a test module whose optional import is missing there (gymnasium) must not stop the rest
timeout "${TEST_TIMEOUT:-200}" "$py" -m pytest -p no:cacheprovider -m device -k "$device" -q \
  --continue-on-collection-errors -rf --durations=5 tests 2>&1 | tee "$out/tests.log"
echo "tests: rc=${PIPESTATUS[0]} in $(($(date +%s) - t0)) s" | tee -a "$out/tests.log"

echo "== population benchmark on $device"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-240}" "$py" benchmarks/population_throughput.py --device "$device" \
  --sizes "${SIZES:-1,27,256}" --updates "${UPDATES:-3}" --json 2>&1 | tee "$out/population.log"
echo "benchmark: rc=${PIPESTATUS[0]} in $(($(date +%s) - t0)) s" | tee -a "$out/population.log"
