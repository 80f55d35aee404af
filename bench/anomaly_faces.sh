#!/usr/bin/env bash
# Faces as the normal class, non-faces as anomalies: scikit-image's `lfw_subset` (200 grey
# crops of 25x25 from Labeled Faces in the Wild; the first 100 are faces, the last 100 non-face
# crops of the same photographs). The file has no labels, so `cae data make-labels` writes
# lfw_labels.npy (100 zeros, 100 ones) beside a link to it. The `oneclass` CAE (inputs resized
# to 28x28) trains on faces only; 30% of all crops are held out as the test partition, 15% of the
# rest for validation. Prints test AUROC per score kind.
#
#   bench/anomaly_faces.sh           (about 2 min on 2 cores)
#
# Environment: CAE (binary), DATA (shared data folder), WORK, EPOCHS (100), LATENT (16), SEED (42).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cae=${CAE:-$root/target/release/cae}
data=${DATA:-$root/../shared/data}
epochs=${EPOCHS:-100}
latent=${LATENT:-16}
seed=${SEED:-42}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi

ln -sf "$(cd "$data/faces" && pwd)/lfw_subset.npy" "$work/lfw.npy"
[ -f "$work/lfw_labels.npy" ] || "$cae" data make-labels --counts 100,100 -o "$work/lfw_labels.npy" > /dev/null
run=$work/faces-run
if [ ! -f "$run/best.bpk" ]; then
  "$cae" train --arch oneclass --param "latent=$latent" --data "$work/lfw.npy" --resize 28x28 \
    --normal-class 0 --test-fraction 0.3 --val-fraction 0.15 --epochs "$epochs" --batch-size 16 \
    --lr 1e-3 --seed "$seed" --out "$run" --json > "$run.train.json" 2>/dev/null
fi
echo "faces (normal) vs non-faces: oneclass CAE latent=$latent, $epochs epochs, seed $seed"
printf "%-14s %12s %10s\n" score "test AUROC" "test AUPR"
for s in mse mae ssim max-smoothed; do
  "$cae" anomaly eval "$run" --score "$s" --json > "$run.eval.json"
  printf "%-14s %12.4f %10.4f\n" "$s" "$(jq .image_auroc "$run.eval.json")" "$(jq .image_aupr "$run.eval.json")"
done
jq -r '"test partition: \(.normal) faces, \(.anomalous) non-faces"' "$run.eval.json"
