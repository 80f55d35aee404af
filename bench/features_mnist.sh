#!/usr/bin/env bash
# Codes, filters and stacked pretraining on real MNIST digits (the first 3,500 of the 4,000 for
# training the autoencoders; probes hold out the last 800):
#   1. `masci` (bench/masci_cae.toml, 16 filters of 7x7) trained 80 epochs as a denoiser with
#      weight decay → `cae filters` mosaic and the activation maps of one digit;
#   2. `pytorch-small` trained 10 epochs → `cae encode` (.npy + labels, shape checked in numpy
#      when python3 with numpy is there) and `cae probe`: softmax regression on the codes vs on
#      raw pixels with 100 / 1000 / all labels;
#   3. `pytorch-small --stacked` (each encoder conv layer pretrained as its own CAE, 5 epochs a
#      stage, then 10 epochs end to end) → `cae probe --finetune`: encoder + linear head with
#      1000 labels, pretrained vs random init.
#
#   bench/features_mnist.sh          (≈ 8 min on 2 cores)
#
# Runs and pictures go to $OUT (default target/bench/features_mnist); existing runs are reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
out=${OUT:-$root/target/bench/features_mnist}
py=${PYTHON:-python3}
mkdir -p "$out"
train() { # RUN ARGS...
  local run=$1; shift
  [ -f "$run/best.bpk" ] || "$cae" train --data "$mnist" --limit 3500 --batch-size 64 --seed 42 \
    --out "$run" "$@" >/dev/null
}

echo "== filters: masci, 16 filters of 7x7, denoising + weight decay"
# Denoising (σ = 0.5) and weight decay wash the random initialisation out of the filters; plain
# MSE training for a few epochs leaves them looking like noise (see the README).
train "$out/masci" --arch "$here/masci_cae.toml" --epochs 80 --noise gaussian:0.5 --weight-decay 1e-2
# The first test digit as a PNG (python's standard library only), for the activation maps.
"$py" - "$mnist" "$out/digit.png" <<'PY'
import gzip, struct, sys, zlib
raw = open(sys.argv[1], "rb").read()
raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
n, h, w = struct.unpack(">III", raw[4:16])
px = raw[16 + 3500 * h * w:][: h * w]
rows = b"".join(b"\x00" + px[y * w:(y + 1) * w] for y in range(h))
chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
open(sys.argv[2], "wb").write(png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$cae" filters "$out/masci" -o "$out/masci-filters.png" --activations "$out/digit.png" --force

echo "== codes: pytorch-small, 10 epochs"
train "$out/small" --arch pytorch-small --epochs 10
"$cae" encode "$out/small" --data "$mnist" -o "$out/small-codes.npy" --force
if "$py" -c "import numpy" 2>/dev/null; then
  "$py" - "$out/small-codes.npy" "$out/small-codes_labels.npy" <<'PY'
import sys, numpy as np
codes, labels = np.load(sys.argv[1]), np.load(sys.argv[2])
print(f"numpy: codes {codes.shape} {codes.dtype}, labels {labels.shape} {labels.dtype}, classes {sorted(set(labels.tolist()))}")
assert codes.ndim == 2 and codes.shape[0] == labels.shape[0] == 4000
PY
fi
"$cae" probe "$out/small" --data "$mnist" --test 800

echo "== stacked: pytorch-small --stacked, then fine-tuned classifiers with 1000 labels"
train "$out/stacked" --arch pytorch-small --stacked --stack-epochs 5 --epochs 10
"$cae" probe "$out/stacked" --data "$mnist" --test 800 --finetune --finetune-labels 1000
