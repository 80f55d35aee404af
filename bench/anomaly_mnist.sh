#!/usr/bin/env bash
# MNIST one-vs-rest anomaly detection on the 4,000 real digits of ../shared/data/mnist: for
# each digit, train the `oneclass` CAE on that digit's training partition only, fit a
# threshold on held-out normal validation images only, and evaluate on the held-out test
# partition of all digits (20% of the 4,000, seeded; never trained on, never used for a
# threshold). Prints test AUROC per digit for every score kind, beside the DCAE figures of
# Ruff et al. 2018 (Deep SVDD, ICML, Table 1; full MNIST, ~6,000 training images per digit;
# quoted as published, not measured here), and the false positive rate that thresholds fitted
# for a target FPR give on the unseen normal test images. The score kind is chosen on the
# validation partitions (held-out normal and anomalous validation images, best mean AUROC), not
# on the test partitions; all four are printed.
#
#   bench/anomaly_mnist.sh                 (all digits; about 4 min per digit on 2 cores)
#   DIGITS="2 5" EPOCHS=60 bench/anomaly_mnist.sh
#
# Environment: CAE (binary, default target/release/cae), MNIST (images file), WORK (keep the
# runs there instead of a temporary folder), EPOCHS (60), LATENT (16), SEED (42).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cae=${CAE:-$root/target/release/cae}
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
digits=${DIGITS:-0 1 2 3 4 5 6 7 8 9}
epochs=${EPOCHS:-60}
latent=${LATENT:-16}
seed=${SEED:-42}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
dcae=(97.6 98.3 85.4 86.7 86.5 78.2 94.6 92.3 86.5 90.4)

echo "MNIST one-vs-rest, test AUROC (%); oneclass CAE latent=$latent, $epochs epochs, batch 32, Adam 1e-3, MSE loss, seed $seed"
printf "%-6s %8s %8s %8s %8s %8s   %6s %12s %11s\n" digit mse mae ssim max-sm DCAE test test-normal val-normal
sum=0; sums=(0 0 0 0); vsums=(0 0 0 0); n=0; below=(0 0 0 0); kinds=(mse mae ssim max-smoothed)
for d in $digits; do
  run=$work/digit-$d
  if [ ! -f "$run/best.bpk" ]; then
    "$cae" train --arch oneclass --param "latent=$latent" --data "$mnist" --normal-class "$d" \
      --test-fraction 0.2 --val-fraction 0.1 --epochs "$epochs" --batch-size 32 --lr 1e-3 \
      --seed "$seed" --out "$run" --json > "$run.train.json" 2>/dev/null
  fi
  aucs=()
  k=0
  for s in mse mae ssim max-smoothed; do
    aucs+=("$("$cae" anomaly eval "$run" --score "$s" --json | jq '.image_auroc * 100')")
    v=$("$cae" anomaly eval "$run" --partition validation --score "$s" --json | jq '.image_auroc * 100')
    vsums[$k]=$(echo "${vsums[$k]} + $v" | bc -l); k=$((k + 1))
  done
  "$cae" anomaly eval "$run" --json > "$run.eval.json"
  normals=$(jq '.normal' "$run.eval.json")
  images=$(jq '.images' "$run.eval.json")
  val_n=$("$cae" anomaly eval "$run" --partition validation --json | jq '.normal')
  printf "%-6s %8.1f %8.1f %8.1f %8.1f %8s   %6s %12s %11s\n" "$d" "${aucs[0]}" "${aucs[1]}" "${aucs[2]}" "${aucs[3]}" "${dcae[$d]}" "$images" "$normals" "$val_n"
  for i in 0 1 2 3; do sums[$i]=$(echo "${sums[$i]} + ${aucs[$i]}" | bc -l); done
  sum=$(echo "$sum + ${dcae[$d]}" | bc -l); n=$((n + 1))
  for i in 0 1 2 3; do
    if (( $(echo "${aucs[$i]} < ${dcae[$d]}" | bc -l) )); then below[$i]=$((below[$i] + 1)); fi
  done
done
printf "%-6s %8.2f %8.2f %8.2f %8.2f %8.2f\n" mean "$(echo "${sums[0]} / $n" | bc -l)" \
  "$(echo "${sums[1]} / $n" | bc -l)" "$(echo "${sums[2]} / $n" | bc -l)" \
  "$(echo "${sums[3]} / $n" | bc -l)" "$(echo "$sum / $n" | bc -l)"
printf "%-6s %8.2f %8.2f %8.2f %8.2f   (mean validation AUROC: held-out normal vs anomalous validation digits)\n" val \
  "$(echo "${vsums[0]} / $n" | bc -l)" "$(echo "${vsums[1]} / $n" | bc -l)" \
  "$(echo "${vsums[2]} / $n" | bc -l)" "$(echo "${vsums[3]} / $n" | bc -l)"
printf "%-6s %8s %8s %8s %8s   (digits below the DCAE figure)\n" below "${below[0]}/$n" "${below[1]}/$n" "${below[2]}/$n" "${below[3]}/$n"
best=0
for i in 1 2 3; do
  if (( $(echo "${vsums[$i]} > ${vsums[$best]}" | bc -l) )); then best=$i; fi
done
printf "score chosen on validation: %s -> mean test AUROC %.2f, %s of %s digits below DCAE\n" "${kinds[$best]}" \
  "$(echo "${sums[$best]} / $n" | bc -l)" "${below[$best]}" "$n"
# Thresholds for the chosen score from the held-out normal validation images only, at two
# target FPRs; measured on the unseen normal test images of every digit, pooled.
for t in 0.05 0.1; do
  fp=0; neg=0; expected=0; f1=0
  for d in $digits; do
    run=$work/digit-$d
    "$cae" anomaly threshold "$run" --score "${kinds[$best]}" --fpr "$t" --json > "$run.threshold-$t.json"
    "$cae" anomaly eval "$run" --json > "$run.eval-$t.json"
    fp=$((fp + $(jq '.at_threshold.confusion.fp' "$run.eval-$t.json")))
    neg=$((neg + $(jq '.normal' "$run.eval-$t.json")))
    expected=$(echo "$expected + $(jq '.threshold.expected_fpr' "$run.threshold-$t.json")" | bc -l)
    f1=$(echo "$f1 + $(jq '.at_threshold.f1' "$run.eval-$t.json")" | bc -l)
  done
  printf "threshold for FPR %s fitted on validation normals only: expected FPR %.2f%% (mean over digits), measured on %d unseen test normals %.2f%%; mean F1 %.3f\n" \
    "$t" "$(echo "100 * $expected / $n" | bc -l)" "$neg" "$(echo "100 * $fp / $neg" | bc -l)" "$(echo "$f1 / $n" | bc -l)"
done
