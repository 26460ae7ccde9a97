#!/usr/bin/env bash
# The GPU check: run on a lent GPU machine (the device tool), never in CI. Before the call,
# build the pure-Python wheels here:  pip wheel --no-deps -w .whl ./shared ./packages/*
# and carry .whl. The GPU image has torch, pytest, matplotlib, scikit-learn, nvidia-ml-py.
# It checks: hai info sees the GPU and its NVML energy counter; every test (gpu-marked ones
# included); a measured energy of a GPU workload; the demo on cuda. Output lands in $OUT.
set -uo pipefail
OUT=${OUT:-build/gpu-check}
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
timeout 400 python3 -m pytest -c pyproject.toml -p no:cacheprovider -q shared/tests packages/*/tests \
    2>&1 | tail -n 15 | tee "$OUT/tests.txt"
timeout 200 python3 -m hai.shared demo --device cuda --out /tmp/demo | tee "$OUT/demo.txt"
cp /tmp/demo/metrics.json "$OUT/demo-metrics.json"
