#!/usr/bin/env python3
"""cae and onnxruntime on the same run and inputs: outputs must agree to --tol (1e-5).

  onnx_check.py --cae CAE [--tol 1e-5] [--presets a,b] [--keep DIR] [--openvino]

For every preset (`cae arch --list`) and four specs with the layer kinds the presets do not use
(every other layer kind, a U-Net's skip connections, a zscore layer, a pool whose padding
PyTorch cannot reproduce): train one short epoch in cae on the built-in shapes (segmentation
presets with --synthetic), `cae export -o model.onnx` and `--part encoder -o encoder.onnx`,
check both files with onnx.checker, run 8 test images (smooth random fields in [0, 1]) through
onnxruntime and compare with cae's own outputs for them: the model's raw output
(`cae reconstruct --npy`; a segmentation preset's anomaly map) and the code (`cae encode`).
With --openvino the same files also run in OpenVINO (`core.read_model`, CPU, f32 precision).
Prints a table; exits 1 when any difference exceeds --tol or a step fails.
"""
import argparse, os, shutil, subprocess, sys, tempfile
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_check import CUSTOM_SPEC, SKIP_SPEC, ZSCORE_SPEC  # noqa: E402

# A 2x2 max pool of stride 1 with `same` padding pads after only, an average pool before only: no
# PyTorch pool gives either (safetensors export refuses the spec), ONNX's explicit pads do.
ONNX_ONLY_SPEC = """
name = "uneven-pool"
input = "1x28x28"

[[encoder]]
type = "conv"
filters = 4
kernel = 3
activation = "relu"

[[encoder]]
type = "max_pool"
size = 2
stride = 1
padding = "same"

[[encoder]]
type = "avg_pool"
size = 2
padding = [1, 1, 0, 0]

[[decoder]]
type = "conv_transpose"
filters = 1
kernel = 3
stride = 2
padding = 1
output_padding = 1
activation = "sigmoid"
"""

TEST_IMAGES = 8


def sh(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout


def presets(cae):
    """The name of every preset `cae arch --list` prints."""
    return [line.split()[0] for line in sh(cae, "arch", "--list").splitlines() if line.strip()]


def is_segmentation(cae, arch):
    """A segmentation spec (output_channels set) trains with --synthetic."""
    return "output_channels" in sh(cae, "arch", arch, "--toml")


def test_images(side, seed):
    """Smooth random images [n, 1, side, side] in [0, 1]: noise, box-blurred and rescaled."""
    g = np.random.default_rng(seed)
    x = g.random((TEST_IMAGES, 1, side + 4, side + 4))
    for axis in (2, 3):
        x = (x + np.roll(x, 1, axis) + np.roll(x, 2, axis)) / 3
    x = x[:, :, 2:-2, 2:-2]
    lo, hi = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def onnx_output(path, x):
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    (y,) = session.run(["output"], {"input": x})
    return y


def openvino_output(path, x):
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[compiled.output(0)]


def max_diff(a, b):
    if a.shape != b.shape:
        raise RuntimeError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def check_one(a, name, arch, side, segmentation, work, seed):
    """Train, export both parts, compare; returns (output Δ, code Δ, max |output|, max |code|),
    then with --openvino OpenVINO's (output Δ, code Δ)."""
    os.makedirs(work, exist_ok=True)
    run = f"{work}/run"
    train = ["train", "--arch", arch, "--data", f"builtin:shapes:64x{side}", "--epochs", 1,
             "--batch-size", 16, "--seed", seed, "--out", run]
    if segmentation:
        train += ["--synthetic", "dark,crack"]
    sh(a.cae, *train)
    model, encoder = f"{work}/model.onnx", f"{work}/encoder.onnx"
    sh(a.cae, "export", run, "-o", model)
    sh(a.cae, "export", run, "--part", "encoder", "-o", encoder)

    x = test_images(side, seed)
    data = f"{work}/test.npy"
    np.save(data, x)
    recon, codes = f"{work}/output.npy", f"{work}/codes.npy"
    sh(a.cae, "reconstruct", run, "--data", data, "-n", TEST_IMAGES, "-o", f"{work}/output.png",
       "--npy", recon)
    sh(a.cae, "encode", run, "--data", data, "-o", codes)
    c_out, c_code = np.load(recon), np.load(codes)
    o_out = onnx_output(model, x)
    o_code = onnx_output(encoder, x).reshape(len(x), -1)
    row = (max_diff(c_out, o_out), max_diff(c_code, o_code),
           float(np.abs(o_out).max()), float(np.abs(o_code).max()))
    if a.openvino:
        v_out = openvino_output(model, x)
        v_code = openvino_output(encoder, x).reshape(len(x), -1)
        row += (max_diff(c_out, v_out), max_diff(c_code, v_code))
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cae", required=True)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--presets", help="comma-separated subset (skips the custom specs)")
    p.add_argument("--keep", help="work in this folder and keep it")
    p.add_argument("--openvino", action="store_true", help="also run the files in OpenVINO")
    a = p.parse_args()
    import onnxruntime

    keep = a.keep or tempfile.mkdtemp(prefix="cae-onnx-")
    os.makedirs(keep, exist_ok=True)
    cases = []  # (name, arch, side, segmentation)
    for name in (a.presets.split(",") if a.presets else presets(a.cae)):
        seg = is_segmentation(a.cae, name)
        # Segmentation presets are fully convolutional (sides a multiple of 8): 32x32 is enough.
        cases.append((name, name, 32 if seg else 28, seg))
    if not a.presets:
        for name, text in [("every-layer (custom)", CUSTOM_SPEC), ("skip connections (custom)", SKIP_SPEC),
                           ("zscore (custom)", ZSCORE_SPEC), ("uneven pool (custom)", ONNX_ONLY_SPEC)]:
            path = f"{keep}/{name.split()[0]}.toml"
            with open(path, "w") as f:
                f.write(text)
            cases.append((name, path, 28, False))

    rows, failures = [], []
    for i, (name, arch, side, seg) in enumerate(cases):
        try:
            rows.append((name, *check_one(a, name, arch, side, seg, f"{keep}/{i}", i + 1)))
        except Exception as e:  # a failed command or session is a failed check, reported per row
            failures.append(f"{name}: {e}")
    ov_head = f" {'OpenVINO out':>13} {'OpenVINO code':>13}" if a.openvino else ""
    print(f"{'model':<26} {'output max|Δ|':>14} {'code max|Δ|':>12} {'max|output|':>12} {'max|code|':>10}{ov_head}  ok")
    bad = 0
    for name, do, dc, so, sc, *ov in rows:
        ok = max(do, dc, *ov) <= a.tol
        bad += not ok
        ov_cols = "".join(f" {v:>13.2e}" for v in ov)
        print(f"{name:<26} {do:>14.2e} {dc:>12.2e} {so:>12.3g} {sc:>10.3g}{ov_cols}  {'yes' if ok else 'NO'}")
    for f in failures:
        print(f"FAILED {f}")
    worst = max((max(r[1], r[2], *r[5:]) for r in rows), default=float("nan"))
    versions = f"onnxruntime {onnxruntime.__version__}"
    if a.openvino:
        import openvino
        versions += f", OpenVINO {openvino.__version__}"
    print(f"{len(rows)} models, worst {worst:.2e}, tolerance {a.tol:g}; {versions}")
    if not a.keep:
        shutil.rmtree(keep, ignore_errors=True)
    sys.exit(1 if bad or failures else 0)


if __name__ == "__main__":
    main()
