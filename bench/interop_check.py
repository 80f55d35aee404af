#!/usr/bin/env python3
"""cae and PyTorch on the same weights and inputs: outputs must agree to --tol (1e-5).

  interop_check.py check   --cae CAE --mnist IMAGES.gz [--tol 1e-5] [--presets a,b] [--keep DIR]
  interop_check.py fixture --cae CAE --out DIR

check, for every preset (1x28x28), a spec using every other layer kind and a U-Net (skip
connections):
  cae → torch   train one epoch in cae on 256 real MNIST digits, `cae export`, load the file with
                load_state_dict(strict=True) into the hand-written twin of torch_reference.py
                (the custom spec: into the model `cae arch --torch` prints), run 32 held-out
                digits through both: reconstructions (`cae reconstruct --npy`, raw outputs) and
                codes (`cae encode`, against net[:cae.encoder_modules]).
  torch → cae   the twin with random weights (batch-norm statistics randomised too), saved with
                safetensors.torch.save_file and with torch.save, `cae import --arch`, same
                comparison, once per file.
  It also checks that the module list `cae arch PRESET --torch` prints has exactly the twin's
  state_dict names and shapes. Prints a table; exits 1 when any difference exceeds --tol.

fixture writes the tiny one-class model the Rust tests load without torch (see its README).
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference  # noqa: E402

PRESETS = ["pytorch-small", "keras-denoise", "dense-latent", "upsample", "galeone", "oneclass"]

# Every layer kind the presets do not use: uneven conv padding (ZeroPad2d), batch norm on volumes
# and vectors, average pooling, `same` max pooling on an odd side (ceil_mode), dilation, dropout,
# a dense layer reshaped by `shape`, bilinear upsampling, a standalone activation, no bias, and
# elu / gelu / tanh / leaky_relu.
CUSTOM_SPEC = """
name = "every-layer"
input = "1x28x28"

[[encoder]]
type = "conv"
filters = 8
kernel = 3
stride = 2
activation = "elu"

[[encoder]]
type = "batch_norm"

[[encoder]]
type = "avg_pool"
size = 2
padding = "same"

[[encoder]]
type = "conv"
filters = 8
kernel = 3
dilation = 2
activation = "gelu"

[[encoder]]
type = "dropout"
rate = 0.2

[[encoder]]
type = "max_pool"
size = 2
padding = "same"

[[encoder]]
type = "dense"
units = 10
activation = "tanh"

[[encoder]]
type = "batch_norm"

[[decoder]]
type = "dense"
shape = "8x7x7"
activation = "leaky_relu(0.2)"

[[decoder]]
type = "upsample"
factor = 2
mode = "bilinear"

[[decoder]]
type = "conv_transpose"
filters = 4
kernel = 3
stride = 2
activation = "relu"

[[decoder]]
type = "conv"
filters = 1
kernel = 1
bias = false

[[decoder]]
type = "activation"
function = "sigmoid"
"""


# Skip connections (save / concat): a two-level U-Net, which `cae arch --torch` prints as a
# program defining Save and Concat.
# A reconstruction CAE behind a zscore layer: its per-pixel buffers are fitted to the training
# digits (cae → torch) or randomised (torch → cae).
ZSCORE_SPEC = """
name = "zscore-check"
input = "1x28x28"

[[encoder]]
type = "zscore"
floor = 0.05

[[encoder]]
type = "conv"
filters = 8
kernel = 3
padding = "same"
activation = "relu"

[[decoder]]
type = "conv"
filters = 1
kernel = 3
padding = "same"
activation = "sigmoid"
"""

SKIP_SPEC = """
name = "unet-check"
input = "1x28x28"
""" + "".join(f"""
[[encoder]]
type = "conv"
filters = 8
kernel = 3
activation = "relu"

[[encoder]]
type = "save"
name = "s{i}"

[[encoder]]
type = "max_pool"
size = 2
""" for i in (1, 2)) + """
[[encoder]]
type = "conv"
filters = 8
kernel = 3
activation = "relu"
""" + "".join(f"""
[[decoder]]
type = "upsample"
factor = 2

[[decoder]]
type = "concat"
from = "s{i}"

[[decoder]]
type = "conv"
filters = {8 if i == 2 else 1}
kernel = 3
activation = "{'relu' if i == 2 else 'sigmoid'}"
""" for i in (2, 1))


def sh(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout


def torch_source(cae, arch, *extra):
    return sh(cae, "arch", arch, "--torch", *extra)


def build(source):
    """The model `cae arch --torch` (or an export's `cae.torch`) describes: one expression, or,
    for a spec with skip connections, a program that leaves it in `model`."""
    import torch.nn as nn
    if "\nmodel = " in source:
        scope = {}
        exec(source, scope)
        return scope["model"]
    return eval(source, {"nn": nn})


def randomise(net, seed):
    """Default PyTorch init, plus batch-norm weights and statistics away from 1/0."""
    import torch
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.rand(n, generator=g) - 0.5
            m.running_mean.data = torch.rand(n, generator=g) - 0.5
            m.running_var.data = torch.rand(n, generator=g) + 0.5
            m.num_batches_tracked.fill_(7)
        elif type(m).__name__ == "ZScore":
            m.mean.data = torch.rand(m.mean.shape, generator=g)
            m.std.data = torch.rand(m.std.shape, generator=g) * 0.3
    return net


def torch_outputs(net, encoder_modules, x):
    import torch
    net.eval()
    with torch.no_grad():
        t = torch.from_numpy(x)
        return net(t).numpy(), net[:encoder_modules](t).flatten(1).numpy()


def cae_outputs(cae, run, data, work):
    recon, codes = f"{work}/recon.npy", f"{work}/codes.npy"
    n = len(np.load(data))
    sh(cae, "reconstruct", run, "--data", data, "-n", n, "-o", f"{work}/recon.png", "--npy", recon, "--force")
    sh(cae, "encode", run, "--data", data, "-o", codes, "--force")
    return np.load(recon), np.load(codes)


def max_diff(a, b):
    if a.shape != b.shape:
        raise RuntimeError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def scale(recon, code):
    """The largest output magnitudes, to read the differences against."""
    return float(np.abs(recon).max()), float(np.abs(code).max())


def same_names(net, reference):
    a = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if a != b:
        raise RuntimeError(f"`cae arch --torch` and the twin differ: {sorted(set(a.items()) ^ set(b.items()))[:4]}")


def check_one(a, name, arch, twin, train, test, work, seed):
    """Both directions for one architecture; returns table rows."""
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    rows = []
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(seed)

    # cae → torch
    run = f"{work}/trained"
    sh(a.cae, "train", "--arch", arch, "--data", train, "--epochs", 1, "--batch-size", 32,
       "--val-fraction", 0, "--seed", seed, "--out", run)
    exported = f"{work}/export.safetensors"
    sh(a.cae, "export", run, "-o", exported, "--force")
    with safe_open(exported, "pt") as f:
        meta = f.metadata()
    k = int(meta["cae.encoder_modules"])
    net = twin() if twin else build(meta["cae.torch"])
    net.load_state_dict(load_file(exported), strict=True)
    t_recon, t_code = torch_outputs(net, k, np.load(test))
    c_recon, c_code = cae_outputs(a.cae, run, test, work)
    rows.append((name, "cae → torch", max_diff(c_recon, t_recon), max_diff(c_code, t_code), scale(t_recon, t_code)))

    # torch → cae, through both file formats
    net = randomise(twin() if twin else build(meta["cae.torch"]), seed)
    st, pt = f"{work}/torch.safetensors", f"{work}/torch.pt"
    save_file(net.state_dict(), st)
    torch.save(net.state_dict(), pt)
    t_recon, t_code = torch_outputs(net, k, np.load(test))
    for path, label, tag in [(st, "torch → cae (.safetensors)", "st"), (pt, "torch → cae (.pt)", "pt")]:
        out = f"{work}/imported-{tag}"
        sh(a.cae, "import", path, "--arch", arch, "-o", out)
        c_recon, c_code = cae_outputs(a.cae, out, test, work)
        rows.append((name, label, max_diff(c_recon, t_recon), max_diff(c_code, t_code), scale(t_recon, t_code)))
    return rows


def cmd_check(a):
    import torch
    torch.set_num_threads(2)
    digits = torch_reference.read_idx(a.mnist)
    keep = a.keep or tempfile.mkdtemp(prefix="cae-interop-")
    os.makedirs(keep, exist_ok=True)
    train, test = f"{keep}/train.npy", f"{keep}/test.npy"
    np.save(train, digits[:256])
    np.save(test, (digits[-32:].astype(np.float32) / 255.0)[:, None])
    spec_path, skip_path = f"{keep}/every-layer.toml", f"{keep}/skip.toml"
    zscore_path = f"{keep}/zscore.toml"
    with open(zscore_path, "w") as f:
        f.write(ZSCORE_SPEC)
    with open(spec_path, "w") as f:
        f.write(CUSTOM_SPEC)
    with open(skip_path, "w") as f:
        f.write(SKIP_SPEC)

    presets = a.presets.split(",") if a.presets else PRESETS
    cases = [(p, p, lambda p=p: torch_reference.model(p, 1)) for p in presets]
    if not a.presets:
        cases.append(("every-layer (custom)", spec_path, None))
        cases.append(("skip connections (custom)", skip_path, None))
        cases.append(("zscore (custom)", zscore_path, None))
    rows, failures = [], []
    names = PRESETS + ["every-layer (custom)", "skip connections (custom)", "zscore (custom)"]
    for i, (name, arch, twin) in enumerate(cases):
        seed = names.index(name) + 1  # the same weights whichever subset runs
        try:
            if twin:
                same_names(build(torch_source(a.cae, arch)), twin())
            rows += check_one(a, name, arch, twin, train, test, f"{keep}/{i}", seed)
        except Exception as e:  # a failed load or command is a failed check, reported per row
            failures.append(f"{name}: {e}")
    print(f"{'model':<26} {'direction':<27} {'recon max|Δ|':>13} {'code max|Δ|':>12} "
          f"{'max|recon|':>11} {'max|code|':>10}  ok")
    bad = 0
    for name, direction, dr, dc, (sr, sc) in rows:
        ok = dr <= a.tol and dc <= a.tol
        bad += not ok
        print(f"{name:<26} {direction:<27} {dr:>13.2e} {dc:>12.2e} {sr:>11.3g} {sc:>10.3g}  {'yes' if ok else 'NO'}")
    for f in failures:
        print(f"FAILED {f}")
    worst = max((max(r[2], r[3]) for r in rows), default=float("nan"))
    print(f"{len(rows)} comparisons, worst {worst:.2e}, tolerance {a.tol:g}; torch {torch.__version__}")
    if not a.keep:
        import shutil
        shutil.rmtree(keep, ignore_errors=True)
    sys.exit(1 if bad or failures else 0)


def cmd_fixture(a):
    """A tiny one-class model (base=4, latent=4) with random PyTorch weights, as .pt and
    .safetensors, two inputs and PyTorch's outputs for them."""
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(0)
    os.makedirs(a.out, exist_ok=True)
    net = build(torch_source(a.cae, "oneclass", "--param", "base=4", "--param", "latent=4"))
    net.eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        y = net(x)
    save_file(net.state_dict(), f"{a.out}/oneclass-tiny.safetensors")
    torch.save(net.state_dict(), f"{a.out}/oneclass-tiny.pt")
    np.save(f"{a.out}/input.npy", x.numpy())
    np.save(f"{a.out}/output.npy", y.numpy())
    print(f"wrote {a.out}: {sum(p.numel() for p in net.parameters())} parameters, torch {torch.__version__}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--cae", required=True)
    c.add_argument("--mnist", required=True)
    c.add_argument("--tol", type=float, default=1e-5)
    c.add_argument("--presets", help="comma-separated subset (skips the custom spec)")
    c.add_argument("--keep", help="work in this folder and keep it")
    f = sub.add_parser("fixture")
    f.add_argument("--cae", required=True)
    f.add_argument("--out", required=True)
    a = p.parse_args()
    {"check": cmd_check, "fixture": cmd_fixture}[a.cmd](a)


if __name__ == "__main__":
    main()
