#!/usr/bin/env bash
# Denoising benchmark on real MNIST digits: for each Gaussian noise level, a keras-denoise CAE
# is trained on the first 3,500 of the 4,000 digits with that noise applied on the fly (targets
# clean), then scored on the last 500 digits it never saw against the noisy input, the 3x3
# median filter and the Gaussian blur (σ tuned on a quarter of the 500; the other 375 are
# scored). Writes one picture per level: rows clean / noisy / median / Gaussian / CAE.
#
#   bench/denoise_mnist.sh [SIGMAS] [EPOCHS]     (default: "0.3 0.5 0.7", 20 epochs)
#
# Runs and pictures go to $OUT (default target/bench/denoise_mnist, git-ignored); an existing
# run is reused, not retrained.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
sigmas=${1:-0.3 0.5 0.7}
epochs=${2:-20}
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
out=${OUT:-$root/target/bench/denoise_mnist}
mkdir -p "$out"

for s in $sigmas; do
  run="$out/keras-denoise-g$s"
  if [ ! -f "$run/best.bpk" ]; then
    "$cae" train --arch keras-denoise --loss bce --data "$mnist" --limit 3500 \
      --noise "gaussian:$s" --epochs "$epochs" --batch-size 32 --lr 1e-3 --seed 42 \
      --out "$run" >/dev/null
  fi
  "$cae" denoise "$run" --data "$mnist" --last 500 --noise "gaussian:$s" --seed 1 \
    --grid "$out/gaussian-$s.png" --samples 10
done
