#!/bin/sh
# Runs fuzz targets one after another, each for SECONDS (default 600), on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags), one job, at low priority. Logs go
# to fuzz/logs/<target>.log; the last lines of each say how many inputs ran and what was found.
# Targets run in-process (no -jobs: its workers all write ./fuzz-0.log, which mixes the logs of
# targets run side by side); the first crash stops a target and is saved in artifacts/<target>/.
#   fuzz/run.sh 600 idx npy cifar image config
set -u
cd "$(dirname "$0")"
seconds=${1:-600}
shift
mkdir -p logs
for target in "${@:-idx npy cifar image config}"; do
    mkdir -p "corpus/$target"
    RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run --codegen-units 8 "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout="${TIMEOUT:-20}" \
        -print_final_stats=1 >"logs/$target.log" 2>&1
    echo "$target: exit $? $(grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "logs/$target.log" | tail -1)"
done
