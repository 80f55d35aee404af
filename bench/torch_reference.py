#!/usr/bin/env python3
"""PyTorch twins of the cae presets, for side-by-side comparisons.

  torch_reference.py split  --mnist IMAGES.gz --train N --out DIR
      writes DIR/train.npy (first N digits) and DIR/test.npy (the rest), uint8 N×28×28
  torch_reference.py train  --arch pytorch-small --train train.npy --test test.npy
                            [--epochs 10 --batch 64 --lr 1e-3 --seed 0 --threads 2]
      trains with Adam + MSE on every training image and prints one JSON line with the
      held-out MSE, PSNR and the training time.
  torch_reference.py bench  --arch pytorch-small --input 1x28x28 [--batch 128 --steps 20 --warmup 3 --threads 2]
      times training steps (forward + MSE + backward + Adam) and inference passes on a random
      batch; prints one JSON line like `cae bench --json` (median ms per step).
  torch_reference.py sgemm  [--threads 2]
      the machine's single-precision matrix-multiply rate (GFLOP/s) through PyTorch's BLAS.

The models mirror crates/cae/src/spec/presets/*.toml layer for layer (same padding rules, same
output activations), module for module as `cae arch PRESET --torch` prints them, so a
`cae export` file loads into them with load_state_dict(strict=True) (bench/interop_check.py).
"""
import argparse, gzip, json, struct, sys, time
import numpy as np


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic != 0x803:
        sys.exit(f"{path}: not an IDX images file")
    h, w = struct.unpack(">II", data[8:16])
    return np.frombuffer(data[16:16 + n * h * w], dtype=np.uint8).reshape(n, h, w)


def model(arch, channels, height=28, width=28):
    """The PyTorch twin of a preset with its default parameters, for a CxHxW input. Module order
    (and so state_dict names) is what `cae export` writes and `cae import` expects."""
    import torch.nn as nn
    c, q = channels, (height // 4, width // 4)
    if arch == "pytorch-small":
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 8, 3, stride=2, padding=1),
            nn.ConvTranspose2d(8, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, c, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())
    if arch == "upsample":
        return nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, c, 3, padding=1))  # linear output, as in the preset
    if arch == "keras-denoise":
        return nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(32, c, 3, padding=1), nn.Sigmoid())
    if arch == "galeone":
        return nn.Sequential(nn.Conv2d(c, 32, 7, padding=6), nn.ReLU(), nn.Conv2d(32, c, 7))
    if arch == "dense-latent":
        latent = 128
        return nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128 * q[0] * q[1], latent),
            nn.Linear(latent, 128 * q[0] * q[1]), nn.ReLU(), nn.Unflatten(1, (128, *q)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, c, 3, padding=1))
    if arch == "oneclass":
        base, latent = 32, 16
        act = lambda: nn.LeakyReLU(0.1)
        return nn.Sequential(
            nn.Conv2d(c, base, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Conv2d(base, 2 * base, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * base * q[0] * q[1], latent),
            nn.Linear(latent, 2 * base * q[0] * q[1]), act(), nn.Unflatten(1, (2 * base, *q)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * base, base, 3, padding=1), act(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(base, base, 3, padding=1), act(),
            nn.Conv2d(base, c, 3, padding=1))
    if arch == "inspect":
        base = 16
        def pair(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                    nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")
        return nn.Sequential(
            *pair(c, base), nn.MaxPool2d(2), *pair(base, 2 * base), nn.MaxPool2d(2),
            *pair(2 * base, 4 * base), nn.MaxPool2d(2), *pair(4 * base, 4 * base),
            up(), *pair(4 * base, 2 * base), up(), *pair(2 * base, base), up(), *pair(base, base),
            nn.Conv2d(base, 1, 1), nn.Sigmoid())
    sys.exit(f"unknown arch {arch}")


# How many of a twin's first modules make the encoder (net[:n] gives `cae encode`'s codes).
ENCODER_MODULES = {"pytorch-small": 3, "upsample": 8, "keras-denoise": 6, "galeone": 2,
                   "dense-latent": 10, "oneclass": 8}


def to_float(a):
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return a[:, None] if a.ndim == 3 else a


def cmd_split(a):
    x = read_idx(a.mnist)
    np.save(f"{a.out}/train.npy", x[: a.train])
    np.save(f"{a.out}/test.npy", x[a.train:])


def cmd_train(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    xtr, xte = to_float(np.load(a.train)), to_float(np.load(a.test))
    net = model(a.arch, *xtr.shape[1:])
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    xtr_t, xte_t = torch.from_numpy(xtr), torch.from_numpy(xte)
    start = time.perf_counter()
    for epoch in range(a.epochs):
        net.train()
        for idx in np.array_split(rng.permutation(len(xtr)), int(np.ceil(len(xtr) / a.batch))):
            xb = xtr_t[torch.from_numpy(idx)]
            loss = torch.nn.functional.mse_loss(net(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        errs = [((net(xte_t[i:i + 256]) - xte_t[i:i + 256]) ** 2).flatten(1).mean(1) for i in range(0, len(xte_t), 256)]
    per = torch.cat(errs).numpy().astype(np.float64)
    psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(per, 1e-10))))
    print(json.dumps({"arch": a.arch, "seed": a.seed, "test_mse": float(per.mean()), "test_psnr": psnr,
                      "train_seconds": seconds, "params": sum(p.numel() for p in net.parameters())}))


def cmd_bench(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c, h, w = (int(v) for v in a.input.split("x"))
    net = model(a.arch, c, h, w)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(a.batch, c, h, w)
    train = []
    for step in range(a.warmup + a.steps):
        t = time.perf_counter()
        loss = torch.nn.functional.mse_loss(net(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if step >= a.warmup:
            train.append((time.perf_counter() - t) * 1000)
    net.eval()
    infer = []
    with torch.no_grad():
        for step in range(a.warmup + a.steps):
            t = time.perf_counter()
            net(x).numpy()
            if step >= a.warmup:
                infer.append((time.perf_counter() - t) * 1000)
    med = lambda v: sorted(v)[len(v) // 2]
    print(json.dumps({"arch": a.arch, "input": a.input, "batch": a.batch,
                      "params": sum(p.numel() for p in net.parameters()),
                      "train": {"ms_per_step": med(train), "samples_ms": train},
                      "infer": {"ms_per_step": med(infer), "samples_ms": infer},
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


def cmd_sgemm(a):
    import torch
    torch.set_num_threads(a.threads)
    n = 1024
    x, y = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        x @ y
    best = 1e9
    for _ in range(10):
        t = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"sgemm_gflops": 2 * n ** 3 / best / 1e9, "threads": a.threads}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split"); s.add_argument("--mnist", required=True); s.add_argument("--train", type=int, required=True); s.add_argument("--out", required=True)
    t = sub.add_parser("train")
    for k, d in [("--arch", "pytorch-small"), ("--train", None), ("--test", None)]:
        t.add_argument(k, default=d, required=d is None)
    t.add_argument("--epochs", type=int, default=10); t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3); t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("bench")
    b.add_argument("--arch", default="pytorch-small"); b.add_argument("--input", default="1x28x28")
    b.add_argument("--batch", type=int, default=128); b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3); b.add_argument("--threads", type=int, default=2)
    g = sub.add_parser("sgemm"); g.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    {"split": cmd_split, "train": cmd_train, "bench": cmd_bench, "sgemm": cmd_sgemm}[a.cmd](a)


if __name__ == "__main__":
    main()
