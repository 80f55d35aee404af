#!/usr/bin/env bash
# Creates .venv-bench (beside Cargo.toml) with CPU PyTorch, numpy and safetensors from the package registry,
# for the side-by-side benchmarks. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-bench
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, numpy, safetensors' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy safetensors
fi
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'
