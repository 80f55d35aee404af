#!/usr/bin/env python3
"""Training and inference speed of the reference models, cae (Burn flex) vs PyTorch CPU, in one run.

For every model, REPS rounds alternate a `cae bench` process and a `torch_reference.py bench`
process (same model, batch, thread count, random batch, warm-up), each under /usr/bin/time for
its peak resident memory. The ratio is cae throughput / PyTorch throughput, the median of the
per-round ratios. GFLOP/s is set against this machine's sgemm rate measured through PyTorch.

  bench/speed.sh [--reps 5] [--steps 20] [--batch 128] [--threads 2] [--models a,b]

--batch is the batch of the 28x28/32x32 reference models; the inspection rows (upsample-256,
oneclass-128, inspect-128) train at the batch of their recipes (16, 32, 16).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {  # name: (arch, input, cae params, batch: None for --batch)
    "pytorch-small": ("pytorch-small", "1x28x28", [], None),
    "keras-denoise": ("keras-denoise", "1x28x28", [], None),
    "dense-latent": ("dense-latent", "3x32x32", [], None),
    "galeone": ("galeone", "1x28x28", ["--param", "n=32", "--param", "k=3"], None),
    # The inspection sizes, at the batches their recipes train with.
    "upsample-256": ("upsample", "3x256x256", [], 16),
    "oneclass-128": ("oneclass", "1x128x128", [], 32),
    "inspect-128": ("inspect", "1x128x128", [], 16),
}


def timed(cmd, env):
    with tempfile.NamedTemporaryFile("r") as t:
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd, env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr.strip()}")
        peak_kb = int(t.read().strip().splitlines()[-1])
    return json.loads(out.stdout.strip().splitlines()[-1]), peak_kb / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cae", default=os.path.join(HERE, "..", "target", "release", "cae"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default=",".join(MODELS))
    a = p.parse_args()
    unknown = [m for m in a.models.split(",") if m not in MODELS]
    if unknown:
        sys.exit(f"error: unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
    if min(a.reps, a.steps, a.batch, a.threads) < 1:
        sys.exit("error: --reps, --steps, --batch and --threads must be at least 1")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    sgemm = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "torch_reference.py"), "sgemm",
                                       "--threads", str(a.threads)], capture_output=True, text=True, env=env).stdout)["sgemm_gflops"]
    print(f"batch {a.batch}, {a.threads} threads, {a.reps} alternating rounds of {a.steps} timed steps; "
          f"sgemm peak {sgemm:.0f} GFLOP/s")
    head = ("model", "torch train ms (img/s)", "cae train ms (img/s)", "train ratio", "torch infer ms (img/s)",
            "cae infer ms (img/s)", "infer ratio", "torch MB", "cae MB", "cae train GFLOP/s", "% sgemm")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    for name in a.models.split(","):
        arch, inp, extra, batch = MODELS[name]
        batch = batch or a.batch

        def cell(ms):  # ms per step and images per second
            return f"{ms:.1f} ({batch * 1000 / ms:,.0f})"

        rows = []
        for _ in range(a.reps):
            r, r_mb = timed([a.cae, "bench", arch, "--input", inp, "--batch", str(batch), "--steps", str(a.steps), "--json"] + extra, env)
            t, t_mb = timed([sys.executable, os.path.join(HERE, "torch_reference.py"), "bench", "--arch", arch, "--input", inp,
                             "--batch", str(batch), "--steps", str(a.steps), "--threads", str(a.threads)], env)
            rows.append((r, r_mb, t, t_mb))
        med = statistics.median
        rt = med(t["train"]["ms_per_step"] / r["train"]["ms_per_step"] for r, _, t, _ in rows)
        ri = med(t["infer"]["ms_per_step"] / r["infer"]["ms_per_step"] for r, _, t, _ in rows)
        ct = med(r["train"]["ms_per_step"] for r, *_ in rows)
        tt = med(t["train"]["ms_per_step"] for *_, t, _ in rows)
        ci = med(r["infer"]["ms_per_step"] for r, *_ in rows)
        ti = med(t["infer"]["ms_per_step"] for *_, t, _ in rows)
        gf = med(r["train"]["gflops"] for r, *_ in rows)
        print(f"| {name} {inp} x{batch} | {cell(tt)} | {cell(ct)} | {rt:.2f}x | {cell(ti)} | {cell(ci)} | {ri:.2f}x | "
              f"{max(x[3] for x in rows):.0f} | {max(x[1] for x in rows):.0f} | {gf:.1f} | {100 * gf / sgemm:.0f}% |")


if __name__ == "__main__":
    main()
