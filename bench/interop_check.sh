#!/usr/bin/env bash
# cae and PyTorch on the same weights and inputs, both directions, every preset plus a spec with
# every other layer kind: max abs difference of reconstructions and codes, which must be ≤ 1e-5.
#
#   bench/interop_check.sh [--tol 1e-5] [--presets a,b] [--keep DIR]
#
# Needs python3 with torch, numpy and safetensors (bench/setup_torch.sh makes .venv-bench with
# them; PYTHON=... picks another) and a release build of cae (CAE=... picks another binary).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
py=${PYTHON:-$root/.venv-bench/bin/python}
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
cae=${CAE:-$root/target/release/cae}
if [ -z "${CAE:-}" ]; then
  (cd "$root" && cargo build --release -p cae-cli --quiet)
fi
exec "$py" "$here/interop_check.py" check --cae "$cae" --mnist "$mnist" "$@"
