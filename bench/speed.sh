#!/usr/bin/env bash
# One command for the speed comparison with PyTorch: builds cae, makes the torch virtualenv if
# missing (bench/setup_torch.sh), then runs bench/speed_vs_pytorch.py with the given options.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
(cd "$root" && cargo build --release --quiet)
"$here/setup_torch.sh" >/dev/null
target=${CARGO_TARGET_DIR:-$root/target}
exec "$root/.venv-bench/bin/python" "$here/speed_vs_pytorch.py" --cae "$target/release/cae" "$@"
