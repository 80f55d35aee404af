#!/usr/bin/env bash
# The inspection page of `cae serve` in a real browser (headless Chromium, driven by
# page_test.mjs through playwright-core). Trains a small one-class run on the committed MNIST
# fixture (digit 1 normal, 12 epochs, ~2 s), keeps a copy without a threshold, fits the
# threshold, lets `cae predict` pick one digit 1 it calls normal and one other digit it calls
# anomalous, starts `cae serve` on both runs, then uploads the two digits and a text file
# through the page's file input (and drops one on it) and checks what the page shows (see
# page_test.mjs).
#
#   tests/browser/page_test.sh                         (needs target/release/cae, chromium, node)
#   SCREENSHOT=docs/serve-page.png tests/browser/page_test.sh
#
# Environment: CAE (binary, default $CARGO_TARGET_DIR/release/cae), CHROMIUM (default
# /usr/bin/chromium), SCREENSHOT, PHONE_SCREENSHOT (PNG paths), WORK (keep files there).
# Runs `npm ci` here when node_modules is missing (one package, playwright-core; it downloads
# no browser).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
mnist=$root/crates/cae/tests/fixtures/mnist-small/mnist500-images-idx3-ubyte.gz
[ -x "$cae" ] || { echo "missing $cae: cargo build --release -p cae-cli" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "missing $CHROMIUM: apt-get install -y chromium" >&2; exit 1; }
command -v node > /dev/null || { echo "missing node (20 or newer)" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Screenshot paths are the caller's, relative to where it ran.
for v in SCREENSHOT PHONE_SCREENSHOT; do
  if [ -n "${!v:-}" ]; then export "$v=$(cd "$(dirname "${!v}")" && pwd)/$(basename "${!v}")"; fi
done

if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

rm -rf "$work/run" "$work/plain" "$work/digits"
"$cae" train --arch upsample --data "$mnist" --normal-class 1 --test-fraction 0.3 \
  --val-fraction 0.3 --epochs 12 --batch-size 8 --lr 3e-3 --out "$work/run" \
  > "$work/train.log" 2>&1 || { cat "$work/train.log" >&2; exit 1; }
cp -r "$work/run" "$work/plain"
"$cae" anomaly threshold "$work/run" --percentile 95 > /dev/null
"$cae" data export-png "$mnist" -o "$work/digits" --limit 60 > /dev/null 2>&1
# Lines read "DIR/00014-1.png: normal  score ..." (the label is the digit after the dash).
"$cae" predict "$work/run" "$work/digits"/*.png > "$work/predict.txt"
normal=$(sed -n 's/^\(.*-1\.png\): normal .*/\1/p' "$work/predict.txt" | head -n 1)
anomalous=$(sed -n 's/^\(.*-[02-9]\.png\): ANOMALOUS .*/\1/p' "$work/predict.txt" | head -n 1)
[ -n "$normal" ] && [ -n "$anomalous" ] || {
  echo "no normal digit 1 or no anomalous other digit among:" >&2
  cat "$work/predict.txt" >&2
  exit 1
}
text=$work/notes.txt
echo "this is not an image" > "$text"
echo "normal: $(grep -F "$normal:" "$work/predict.txt")"
echo "anomalous: $(grep -F "$anomalous:" "$work/predict.txt")"

# Starts `cae serve RUN` on a free port; sets $url.
start() {
  local log=$work/serve-$(basename "$1").log
  : > "$log" # before the server's own redirection opens it: sed reads it at once
  "$cae" serve "$1" --addr 127.0.0.1:0 2> "$log" &
  pids+=($!)
  url=
  for _ in $(seq 1 300); do
    url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2> /dev/null || break
    sleep 0.1
  done
  echo "cae serve $1 did not start:" >&2
  cat "$log" >&2
  exit 1
}
start "$work/run"
export CAE_URL=$url
start "$work/plain"
export CAE_PLAIN_URL=$url
export NORMAL_PNG=$normal ANOMALOUS_PNG=$anomalous TEXT_FILE=$text
node "$here/page_test.mjs"
