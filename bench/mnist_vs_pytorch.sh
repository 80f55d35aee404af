#!/usr/bin/env bash
# Held-out reconstruction MSE of the same model trained by cae and by PyTorch with the same
# budget: the first 3,500 of the 4,000 real MNIST digits for training, the last 500 held out;
# 10 epochs, batch 64, Adam lr 1e-3, MSE, 2 threads each; several seeds, alternating.
#
#   bench/mnist_vs_pytorch.sh [ARCH] [SEEDS]      (default: pytorch-small, 5 seeds)
#
# Needs python3 with torch and numpy (bench/setup_torch.sh makes .venv-bench with both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
arch=${1:-pytorch-small}
seeds=${2:-5}
py=${PYTHON:-$root/.venv-bench/bin/python}
mnist=${MNIST:-$root/../shared/data/mnist/mnist4k-images-idx3-ubyte.gz}
cae=${CAE:-$root/target/release/cae}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$py" "$here/torch_reference.py" split --mnist "$mnist" --train 3500 --out "$work"
printf "%-6s %-14s %12s %12s %10s %10s\n" seed arch cae_mse torch_mse cae_s torch_s
for seed in $(seq 1 "$seeds"); do
  start=$(date +%s.%N)
  RAYON_NUM_THREADS=2 "$cae" train --arch "$arch" --data "$work/train.npy" --val-fraction 0 \
    --epochs 10 --batch-size 64 --lr 1e-3 --loss mse --seed "$seed" --out "$work/run-$seed" 2>/dev/null >/dev/null
  cae_s=$(echo "$(date +%s.%N) - $start" | bc)
  cae_mse=$("$cae" eval "$work/run-$seed" --data "$work/test.npy" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["mse"])')
  torch=$("$py" "$here/torch_reference.py" train --arch "$arch" --train "$work/train.npy" --test "$work/test.npy" \
    --epochs 10 --batch 64 --lr 1e-3 --seed "$seed" --threads 2)
  torch_mse=$(echo "$torch" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["test_mse"])')
  torch_s=$(echo "$torch" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["train_seconds"])')
  printf "%-6s %-14s %12.6f %12.6f %10.1f %10.1f\n" "$seed" "$arch" "$cae_mse" "$torch_mse" "$cae_s" "$torch_s"
done
