#!/usr/bin/env bash
# Denoising benchmark on natural photographs (grey): a fully convolutional CAE is trained on
# 32x32 patches (stride 16) of astronaut, coffee and chelsea with Gaussian noise on the fly,
# then scored on the 256 non-overlapping 32x32 patches of camera.png (a photo it never saw)
# against the noisy input, the 3x3 median filter and the tuned Gaussian blur; finally the whole
# 512x512 cameraman is denoised in one pass (the model runs on any size). Runs and pictures go
# to $OUT (default target/bench/denoise_photos, git-ignored); existing runs are reused.
#
#   bench/denoise_photos.sh [SIGMAS] [EPOCHS]    (default: "0.1 0.2", 30 epochs)
#   ARCH=bench/denoise_photo_cae.toml bench/denoise_photos.sh      (another architecture)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
sigmas=${1:-0.1 0.2}
epochs=${2:-30}
photos=${PHOTOS:-$root/../shared/data/photos}
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
out=${OUT:-$root/target/bench/denoise_photos}
mkdir -p "$out"

[ -f "$out/train.npy" ] || "$cae" patches "$photos/astronaut.png" "$photos/coffee.png" \
  "$photos/chelsea.png" --channels 1 --side 32 --stride 16 -o "$out/train.npy"
[ -f "$out/camera.npy" ] || "$cae" patches "$photos/camera.png" --channels 1 --side 32 \
  -o "$out/camera.npy"

arch=${ARCH:-keras-denoise}
for s in $sigmas; do
  run="$out/$(basename "$arch" .toml)-g$s"
  if [ ! -f "$run/best.bpk" ]; then
    "$cae" train --arch "$arch" --loss "${LOSS:-mse}" --data "$out/train.npy" \
      --noise "gaussian:$s" --epochs "$epochs" --batch-size 32 --lr 1e-3 --seed 42 \
      --out "$run" >/dev/null
  fi
  "$cae" denoise "$run" --data "$out/camera.npy" --noise "gaussian:$s" --seed 1 \
    --grid "$out/$(basename "$run")-patches.png" --samples 10 --force
  "$cae" denoise "$run" "$photos/camera.png" --add-noise "gaussian:$s" --seed 1 \
    -o "$out/$(basename "$run")-whole" --force
done
