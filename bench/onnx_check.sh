#!/usr/bin/env bash
# cae and onnxruntime on the same runs and inputs: every preset plus specs with every other layer
# kind, exported with `cae export -o model.onnx` (and `--part encoder`); max abs difference of
# outputs and codes, which must be ≤ 1e-5.
#
#   bench/onnx_check.sh [--tol 1e-5] [--presets a,b] [--keep DIR] [--openvino]
#
# Makes .venv-onnx (beside Cargo.toml) with onnxruntime, onnx and numpy from the package registry
# on first use, and openvino when --openvino asks to run the files there too (PYTHON=... picks
# another interpreter that has them), and builds cae in release mode (CAE=... picks another
# binary).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [ -z "${PYTHON:-}" ]; then
  venv=$root/.venv-onnx
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnxruntime, onnx, numpy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet onnxruntime onnx numpy
  fi
  case " $* " in
    *" --openvino "*) "$venv/bin/python" -c 'import openvino' 2>/dev/null || "$venv/bin/pip" install --quiet openvino ;;
  esac
  py=$venv/bin/python
else
  py=$PYTHON
fi
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
if [ -z "${CAE:-}" ]; then
  (cd "$root" && cargo build --release -p cae-cli --quiet)
fi
exec "$py" "$here/onnx_check.py" --cae "$cae" "$@"
