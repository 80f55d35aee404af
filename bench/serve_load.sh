#!/usr/bin/env bash
# `cae serve` under load and abuse. Trains a small one-class MNIST run (digit 1 normal), unless
# RUN names one, fits its threshold, starts the server on a free loopback port, then:
#   1. crates/cae-load: CLIENTS (64) concurrent clients posting real MNIST digits as PNG to
#      /v1/score for LOAD_SECONDS (30); prints requests/s, p50/p99/max latency, errors and the
#      server's peak RSS;
#   2. malformed requests (garbage, wrong content types, an oversize body, a PNG header claiming
#      100000x100000, an empty body, multipart without a file, a wrong-size image, an unknown
#      endpoint): each must get its 4xx code with a JSON {"error": ...} body;
#   3. /healthz must still answer; then SIGTERM, and the server must exit 0.
# Exits non-zero on the first failed check.
#
#   bench/serve_load.sh                    (trains ~1 min on 2 cores, then 30 s of load)
#   RUN=runs/digit1 LOAD_SECONDS=10 CLIENTS=16 bench/serve_load.sh
#
# Environment: CAE, CAE_LOAD (binaries, default target/release/...), MNIST (images file), RUN,
# CLIENTS, LOAD_SECONDS, MAX_BATCH (server --max-batch), WORK (keep files there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${CARGO_TARGET_DIR:-$root/target}
cae=${CAE:-$target/release/cae}
load=${CAE_LOAD:-$target/release/cae-load}
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
clients=${CLIENTS:-64}
seconds=${LOAD_SECONDS:-30}
max_batch=${MAX_BATCH:-64}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
for bin in "$cae" "$load"; do
  [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p cae-cli -p cae-load" >&2; exit 1; }
done

run=${RUN:-$work/run}
if [ ! -f "$run/best.bpk" ]; then
  echo "training $run (upsample preset, digit 1 normal, 8 epochs)"
  "$cae" train --arch upsample --data "$mnist" --normal-class 1 --test-fraction 0.2 \
    --val-fraction 0.2 --epochs 8 --batch-size 32 --lr 3e-3 --out "$run" --json > "$work/train.json"
fi
if [ ! -f "$run/threshold.json" ]; then
  "$cae" anomaly threshold "$run" --percentile 99 > /dev/null
fi

log=$work/serve.log
"$cae" serve "$run" --addr 127.0.0.1:0 --max-body 1048576 --max-batch "$max_batch" 2> "$log" &
pid=$!
cleanup_server() { kill -9 "$pid" 2> /dev/null || true; }
trap 'cleanup_server; [ -z "${WORK:-}" ] && rm -rf "$work"' EXIT
addr=
for _ in $(seq 1 300); do
  addr=$(sed -n 's/.*listening on http:\/\///p' "$log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2> /dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }
base=http://$addr
echo "server pid $pid on $base; model: $(curl -sf "$base/v1/model" | jq -c '{input: .input.shape, arch: .architecture.name, score: .score.kind, threshold: .threshold.image}')"

echo "load: $clients clients for $seconds s, POST /v1/score (PNG digits from $(basename "$mnist"))"
"$load" --url "$base/v1/score" --clients "$clients" --duration "$seconds" --images "$mnist" \
  --limit 1000 --server-pid "$pid" --json > "$work/load.json"
jq -r '"\(.ok) ok, \(.errors) errors, \(.requests_per_s | . * 10 | round / 10) requests/s; latency ms p50 \(.latency_ms.p50) p90 \(.latency_ms.p90) p99 \(.latency_ms.p99) max \(.latency_ms.max); server peak RSS \(.server_peak_rss_mib | . * 10 | round / 10) MiB"' "$work/load.json"
echo "batching: $(curl -sf "$base/healthz" | jq -c '{batches, images, largest_batch, failed_batches, mean_batch: (if .batches > 0 then (.images / .batches * 10 | round / 10) else 0 end)}')"
errors=$(jq .errors "$work/load.json")
[ "$errors" = 0 ] || { echo "FAIL: $errors errors under load: $(jq -c .errors_by_kind "$work/load.json")" >&2; exit 1; }
kill -0 "$pid" || { echo "FAIL: the server died under load" >&2; exit 1; }

# Malformed requests: name, expected status, curl arguments.
python3 - "$work" << 'EOF'
import struct, sys, zlib
work = sys.argv[1]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
sig = b"\x89PNG\r\n\x1a\n"
ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
open(f"{work}/huge.png", "wb").write(sig + ihdr + chunk(b"IEND", b""))
raw = b"".join(b"\x00" + bytes(32) for _ in range(32))
idat = chunk(b"IDAT", zlib.compress(raw))
open(f"{work}/32x32.png", "wb").write(sig + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0)) + idat + chunk(b"IEND", b""))
open(f"{work}/big.bin", "wb").write(bytes(2 * 1024 * 1024))
open(f"{work}/garbage.bin", "wb").write(b"GARBAGE \x00\x01\x02 this is not an image" * 10)
EOF
fail=0
check() {
  local name=$1 want=$2; shift 2
  local out status
  out=$(curl -s -o "$work/body" -w '%{http_code} %{content_type}' "$@" || true)
  status=${out%% *}
  if [ "$status" = "$want" ] && jq -e '.error | type == "string"' "$work/body" > /dev/null 2>&1; then
    printf "  ok   %-34s %s %s\n" "$name" "$status" "$(jq -c .error "$work/body" | cut -c 1-110)"
  else
    printf "  FAIL %-34s got %s (want %s): %s\n" "$name" "$out" "$want" "$(head -c 200 "$work/body")"
    fail=1
  fi
}
echo "malformed requests:"
check "garbage body" 400 --data-binary @"$work/garbage.bin" -H 'Content-Type: image/png' "$base/v1/score"
check "empty body" 400 --data-binary '' -H 'Content-Type: image/png' "$base/v1/score"
check "wrong content type (text/plain)" 415 --data-binary @"$work/32x32.png" -H 'Content-Type: text/plain' "$base/v1/score"
check "form-urlencoded (curl default)" 415 --data 'a=b' "$base/v1/score"
check "oversize body (2 MiB)" 413 --data-binary @"$work/big.bin" -H 'Content-Type: image/png' "$base/v1/score"
check "PNG header claiming 100000x100000" 413 --data-binary @"$work/huge.png" -H 'Content-Type: image/png' "$base/v1/score"
check "wrong size (32x32)" 422 --data-binary @"$work/32x32.png" -H 'Content-Type: image/png' "$base/v1/score"
check "multipart with no file" 400 -F 'note=hello' "$base/v1/score"
check "multipart without boundary" 400 --data-binary 'x' -H 'Content-Type: multipart/form-data' "$base/v1/score"
check "garbage multipart file" 400 -F "image=@$work/garbage.bin;type=image/png" "$base/v1/score"
check "unknown query parameter" 400 --data-binary @"$work/huge.png" -H 'Content-Type: image/png' "$base/v1/score?colour=1"
check "unknown endpoint" 404 --data-binary @"$work/32x32.png" -H 'Content-Type: image/png' "$base/v1/nope"
check "GET on a POST endpoint" 405 "$base/v1/score"
check "garbage to /v1/heatmap" 400 --data-binary @"$work/garbage.bin" -H 'Content-Type: image/jpeg' "$base/v1/heatmap"
check "garbage to /v1/encode" 400 --data-binary @"$work/garbage.bin" -H 'Content-Type: application/octet-stream' "$base/v1/encode"
health=$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz" || true)
echo "healthz after abuse: $health"
[ "$health" = 200 ] || fail=1

kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
echo "after SIGTERM the server exited with $code"
[ "$code" = 0 ] || fail=1
trap '[ -z "${WORK:-}" ] && rm -rf "$work"' EXIT
[ "$fail" = 0 ] && echo "all checks passed" || { echo "FAIL" >&2; exit 1; }
