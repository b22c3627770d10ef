#!/usr/bin/env bash
# The GPU legs of issues 16, 17 and 18 in one command that fits a 15-minute device lease:
#
#   bash scripts/gpu_checks.sh OUT        # on the GPU machine, from the repository root
#   QUICK=1 bash scripts/gpu_checks.sh OUT   # a smoke run of the same commands (any machine)
#
# Each step runs under its own time limit (the first argument of `step`, in seconds), so one
# that runs out still leaves the others' reports (a report is written when its step ends);
# together at most 9.5 minutes (the device's limit for one command is 10). The limits are
# estimates: no GPU has run this yet. What each step writes, under OUT:
#   issue16/report.{json,md}   the sweep against the lrlab loop, jit(vmap) and torch.func (only
#                              where the image has torch) at K = 1, 64, 512
#   issue16-4096/report.*      the sweep against the loop at K = 4096 (goal: 100x the loop)
#   issue17/tasks.{json,md}    the MLP and the transformer, sweep against loop, K 64 and 1024
#   issue17-resnet/tasks.*     the same for mnist1d-resnet at K = 64
#   issue18/search_study.json  run_study against a user's sequential Optuna loop (goal 5x)
#   device.txt                 nvidia-smi and JAX's devices, for the report's table
# Then copy OUT to benchmarks/gpu-<card>/ and quote the figures in BENCHMARKS.md's GPU section.
set -u
OUT=${1:?usage: bash scripts/gpu_checks.sh OUT}
export PYTHONPATH=.
mkdir -p "$OUT/issue16" "$OUT/issue16-4096" "$OUT/issue17" "$OUT/issue17-resnet" "$OUT/issue18"

step() {  # step LIMIT COMMAND...: run it with a time limit; say how it ended, go on regardless
  local limit=$1
  shift
  echo "== $(date +%T) ($limit s) $*"
  timeout "$limit" "$@"
  echo "== exit $? after $SECONDS s in all"
}

{ nvidia-smi || true; python -c "import jax; print(jax.__version__, jax.devices())"; } \
  > "$OUT/device.txt" 2>&1
if [ "${QUICK:-0}" = 1 ]; then
  step 200 python scripts/benchmark.py --quick --legs sweep,vmap,sequential --out "$OUT/issue16"
  step 200 python scripts/benchmark.py --quick --ks 16 --legs sweep,sequential --repeats 2 \
    --budget 10 --out "$OUT/issue16-4096"
  step 200 python scripts/benchmark.py --tasks mnist1d-mlp --ks 8 --out "$OUT/issue17"
  step 100 python scripts/benchmark.py --tasks mnist1d-resnet --ks 8 --steps 5 \
    --out "$OUT/issue17-resnet"
  step 100 python scripts/search_study_speed.py --k 3 --steps 60 --repeats 1 \
    --out "$OUT/issue18/search_study.json"
else
  step 150 python scripts/benchmark.py --ks 1,64,512 --legs sweep,vmap,sequential,torch_func \
    --repeats 3 --budget 10 --out "$OUT/issue16"
  step 150 python scripts/benchmark.py --ks 4096 --legs sweep,sequential --repeats 2 \
    --budget 10 --out "$OUT/issue16-4096"
  step 130 python scripts/benchmark.py --tasks mnist1d-mlp,lm-transformer --ks 64,1024 \
    --out "$OUT/issue17"
  step 70 python scripts/benchmark.py --tasks mnist1d-resnet --ks 64 --out "$OUT/issue17-resnet"
  step 60 python scripts/search_study_speed.py --k 27 --steps 1620 --repeats 1 \
    --out "$OUT/issue18/search_study.json"
fi
