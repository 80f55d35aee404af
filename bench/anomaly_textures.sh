#!/usr/bin/env bash
# Defect detection and localisation on real texture photographs (../shared/data/textures:
# brick.png, grass.png, 512x512 grey) with synthetic defects: `cae data make-defects` cuts
# 64x64 training patches and test patches from disjoint blocks of the photograph and paints
# scratches, spots, holes, stains, cuts and folds (with masks) on some test patches, in the
# MVTec AD layout. The `upsample` CAE is trained on the defect-free training patches only; a
# threshold is fitted on held-out defect-free patches only (target FPR 0.05). Prints image
# AUROC, pixel AUROC and PRO (FPR <= 0.3, normalised) per score kind, the AUROC per defect
# kind, and F1 / measured FPR at the threshold. Then the same for the recommended inspection
# recipe (`inspect` segmentation network trained on synthetic anomalies, `--score mask`; its
# synthetic anomalies are not make-defects' painter, so it never sees the test defects).
#
#   bench/anomaly_textures.sh                (brick and grass; about 10 min each on 2 cores)
#   TEXTURES=brick EPOCHS=30 WORK=/tmp/tex bench/anomaly_textures.sh
#
# Environment: CAE (binary), DATA (shared data folder), WORK (keep everything there: data sets,
# runs, overlays), TEXTURES, EPOCHS (30), SEED (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cae=${CAE:-$root/target/release/cae}
data=${DATA:-$root/../shared/data}
textures=${TEXTURES:-brick grass}
epochs=${EPOCHS:-30}
seed=${SEED:-1}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi

for tex in $textures; do
  set_dir=$work/$tex
  run=$work/$tex-run
  [ -d "$set_dir" ] || "$cae" data make-defects "$data/textures/$tex.png" -o "$set_dir" --patch 64 \
    --train 300 --test-good 60 --per-kind 15 --seed "$seed" > /dev/null
  if [ ! -f "$run/best.bpk" ]; then
    "$cae" train --arch upsample --data "$set_dir" --epochs "$epochs" --batch-size 16 --lr 2e-3 \
      --val-fraction 0.15 --seed 42 --out "$run" --json > "$run.train.json" 2>/dev/null
  fi
  echo "== $tex: upsample CAE, $epochs epochs, 64x64 patches (255 train, 45 validation, 150 test of which 90 with defects)"
  printf "%-22s %12s %12s %8s\n" score "image AUROC" "pixel AUROC" PRO
  for s in mse ssim "max-smoothed --sigma 2" "max-smoothed --sigma 4"; do
    # shellcheck disable=SC2086
    "$cae" anomaly eval "$run" --score $s --json > "$run.eval.json"
    printf "%-22s %12.4f %12.4f %8.4f\n" "$s" "$(jq .image_auroc "$run.eval.json")" \
      "$(jq .pixel.auroc "$run.eval.json")" "$(jq .pixel.pro "$run.eval.json")"
  done
  "$cae" anomaly threshold "$run" --score max-smoothed --sigma 2 --fpr 0.05 --json > "$run.threshold.json"
  "$cae" anomaly eval "$run" -o "$work/$tex-eval" --force --json > "$run.eval.json"
  echo "AUROC per defect kind (max-smoothed σ 2): $(jq -r '[.per_class[] | "\(.class) \(.auroc * 1000 | round / 1000)"] | join(", ")' "$run.eval.json")"
  printf "at the threshold fitted for FPR 0.05 on %s validation normals: F1 %.3f, precision %.3f, recall %.3f, measured FPR on the %s test normals %.3f\n" \
    "$(jq .threshold.fitted_on.normal "$run.threshold.json")" "$(jq .at_threshold.f1 "$run.eval.json")" \
    "$(jq .at_threshold.precision "$run.eval.json")" "$(jq .at_threshold.recall "$run.eval.json")" \
    "$(jq .normal "$run.eval.json")" "$(jq .at_threshold.fpr "$run.eval.json")"
  "$cae" anomaly score "$run" -o "$work/$tex-overlays" --force > /dev/null 2>&1
  echo "pictures: $work/$tex-eval (histogram, ROC, PRO), $work/$tex-overlays (one overlay per test patch)"

  seg=$work/$tex-inspect
  if [ ! -f "$seg/best.bpk" ]; then
    "$cae" train --arch inspect --data "$set_dir" --synthetic dark,texture,crack --augment flip \
      --schedule cosine --epochs "$epochs" --batch-size 16 --lr 1e-3 --val-fraction 0.15 --seed 42 \
      --out "$seg" --json > "$seg.train.json" 2>/dev/null
  fi
  "$cae" anomaly threshold "$seg" --fpr 0.05 --json > "$seg.threshold.json"
  "$cae" anomaly eval "$seg" --no-baseline -o "$work/$tex-inspect-eval" --force --json > "$seg.eval.json"
  printf "== %s: inspect + synthetic anomalies, %s epochs: image AUROC %.4f, pixel AUROC %.4f, PRO %.4f; at the FPR 0.05 threshold F1 %.3f, measured FPR %.3f\n" \
    "$tex" "$epochs" "$(jq .image_auroc "$seg.eval.json")" "$(jq .pixel.auroc "$seg.eval.json")" "$(jq .pixel.pro "$seg.eval.json")" \
    "$(jq .at_threshold.f1 "$seg.eval.json")" "$(jq .at_threshold.fpr "$seg.eval.json")"
  echo "AUROC per defect kind (mask): $(jq -r '[.per_class[] | "\(.class) \(.auroc * 1000 | round / 1000)"] | join(", ")' "$seg.eval.json")"
  "$cae" anomaly score "$seg" --sheet "$work/$tex-inspect-sheet.png" --force > /dev/null 2>&1
done
