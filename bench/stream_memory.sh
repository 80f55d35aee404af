#!/usr/bin/env bash
# Memory and speed of a folder trained in memory, with --stream, and with --stream --cache-mb,
# side by side on the same images: peak RSS (from /usr/bin/time) and the training images/s of
# each epoch (metrics.csv), over alternating rounds, and whether the three gave the same losses.
#
# The images are N random 256x256 RGB crops of ../shared/data/photos (seeded, PNG), made once
# into WORK/crops-N; the model is `pytorch-small`, batch 32, EPOCHS epochs (the second and later
# epochs are the ones a cache serves).
#
#   bench/stream_memory.sh                        (2,000 crops, 2 epochs, 2 rounds: ~5 min on 2 cores)
#   N=20000 MODES=stream,cache CACHE_MB=4000 bench/stream_memory.sh
#
# Environment: CAE (binary, default target/release/cae), PYTHON (with pillow and numpy, default
# .venv-bench/bin/python, else python3), WORK (keep crops and runs; default a temporary folder),
# N (2000), EPOCHS (2), ROUNDS (2), MODES (memory,stream,cache), CACHE_MB (512: more than the
# 1,800 training crops of N=2000 take as u8, 338 MiB; a smaller budget shows the warning that
# says how much would hold them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cae=${CAE:-${CARGO_TARGET_DIR:-$root/target}/release/cae}
photos=$root/../shared/data/photos
n=${N:-2000}
epochs=${EPOCHS:-2}
rounds=${ROUNDS:-2}
modes=${MODES:-memory,stream,cache}
cache_mb=${CACHE_MB:-512}
python=${PYTHON:-}
[ -n "$python" ] || { [ -x "$root/.venv-bench/bin/python" ] && python=$root/.venv-bench/bin/python; } || python=python3
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
die() { echo "error: $*" >&2; exit 1; }
[ -x "$cae" ] || die "$cae: no cae binary; build it with cargo build --release (or set CAE)"
[ -x /usr/bin/time ] || die "/usr/bin/time: missing (it measures peak RSS); install GNU time"
[ -d "$photos" ] || die "$photos: missing"
case $n in '' | *[!0-9]*) die "N=$n: not a count of images" ;; esac

crops=$work/crops-$n
if [ ! -f "$crops/.done" ]; then
  rm -rf "$crops" && mkdir -p "$crops"
  "$python" - "$photos" "$crops" "$n" << 'EOF' || die "making the crops failed (PYTHON=$python needs pillow and numpy)"
import sys, pathlib
import numpy as np
from PIL import Image
photos, out, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos.glob("*.png"))]
rng = np.random.default_rng(7)
for i in range(n):
    img = images[i % len(images)]
    y = rng.integers(0, img.shape[0] - 256 + 1)
    x = rng.integers(0, img.shape[1] - 256 + 1)
    Image.fromarray(img[y:y + 256, x:x + 256]).save(out / f"{i:05d}.png")
EOF
  touch "$crops/.done"
fi

# run MODE ROUND: trains into WORK/MODE-ROUND; prints "peak_mb ips1 ips2 ... | losses".
run() {
  local mode=$1 round=$2 out=$work/$1-$2 extra=()
  case $mode in
    memory) ;;
    stream) extra=(--stream) ;;
    cache) extra=(--stream --cache-mb "$cache_mb") ;;
    *) die "MODES: unknown mode $mode (memory, stream, cache)" ;;
  esac
  rm -rf "$out"
  /usr/bin/time -f %M -o "$out.rss" "$cae" train --arch pytorch-small --data "$crops" --epochs "$epochs" \
    --batch-size 32 --seed 1 "${extra[@]}" --out "$out" > "$out.log" 2>&1 \
    || { tail -2 "$out.log" >&2; die "training $mode failed (log: $out.log)"; }
  local rss; rss=$(tail -1 "$out.rss")
  local ips losses
  ips=$(awk -F, 'NR > 1 { printf "%s%.1f", (NR > 2 ? ", " : ""), $5 }' "$out/metrics.csv")
  losses=$(awk -F, 'NR > 1 { printf "%s %s ", $2, $3 }' "$out/metrics.csv")
  printf '%s\t%s\t%.2f\t%s\t%s\n' "$mode" "$round" "$(echo "$rss" | awk '{print $1 / 1048576}')" "$ips" "$losses"
}

results=$work/results.tsv
: > "$results"
IFS=, read -r -a mode_list <<< "$modes"
for round in $(seq 1 "$rounds"); do
  for mode in "${mode_list[@]}"; do
    run "$mode" "$round" | tee -a "$results" >&2
  done
done

echo
echo "$n RGB 256x256 crops, pytorch-small, batch 32, $epochs epochs, $rounds alternating rounds (cache: --cache-mb $cache_mb)"
printf '| how | peak RSS GB | training images/s per epoch |\n| --- | --- | --- |\n'
for mode in "${mode_list[@]}"; do
  awk -F'\t' -v m="$mode" '$1 == m { rss = rss (rss ? ", " : "") $3; ips = ips (ips ? "; " : "") $4 }
    END { printf "| %s | %s | %s |\n", m, rss, ips }' "$results"
done
distinct=$(cut -f5 "$results" | sort -u | wc -l)
if [ "$distinct" -eq 1 ]; then
  echo "same losses in every run: $(cut -f5 "$results" | head -1)"
else
  echo "losses differ between runs:"; cut -f1,2,5 "$results"
fi
