//! Per-op timing of `cae::kernels` against Burn's built-in Flex convolutions, side by side in one
//! process: for every op and shape of the reference models, rounds alternate the two
//! implementations and the median per-call time of each is reported with their ratio, so a busy
//! machine slows both alike.
//!
//!   RAYON_NUM_THREADS=2 cargo run --release -p cae --example conv_ops -- [--batch 128] [--rounds 7] [--filter convT]
//!
//! `infer` is the forward pass on a plain Flex device; `train` is forward + backward on an
//! autodiff device (gradients of `sum(y)` for the weight, the bias, and the input unless it is
//! the model's input).

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};
use cae::kernels::Act;
use std::time::Instant;

#[derive(Clone)]
struct Op {
    name: &'static str,
    transpose: bool,
    cin: usize,
    cout: usize,
    side: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    padding_out: usize,
    /// The model's input: no input gradient.
    first: bool,
}

#[allow(clippy::too_many_arguments)]
const fn op(
    name: &'static str,
    transpose: bool,
    (cin, cout): (usize, usize),
    side: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    padding_out: usize,
    first: bool,
) -> Op {
    Op {
        name,
        transpose,
        cin,
        cout,
        side,
        kernel,
        stride,
        padding,
        padding_out,
        first,
    }
}

const OPS: &[Op] = &[
    op("conv 1→32 3x3 28x28", false, (1, 32), 28, 3, 1, 1, 0, true),
    op(
        "conv 32→32 3x3 14x14",
        false,
        (32, 32),
        14,
        3,
        1,
        1,
        0,
        false,
    ),
    op("conv 32→1 3x3 28x28", false, (32, 1), 28, 3, 1, 1, 0, false),
    op(
        "conv 1→16 3x3 s2 28→14",
        false,
        (1, 16),
        28,
        3,
        2,
        1,
        0,
        true,
    ),
    op(
        "conv 16→8 3x3 s2 14→7",
        false,
        (16, 8),
        14,
        3,
        2,
        1,
        0,
        false,
    ),
    op(
        "convT 8→16 3x3 s2 7→14",
        true,
        (8, 16),
        7,
        3,
        2,
        1,
        1,
        false,
    ),
    op(
        "convT 16→1 3x3 s2 14→28",
        true,
        (16, 1),
        14,
        3,
        2,
        1,
        1,
        false,
    ),
    op(
        "convT 32→32 3x3 s2 7→14",
        true,
        (32, 32),
        7,
        3,
        2,
        1,
        1,
        false,
    ),
    op(
        "convT 32→32 3x3 s2 14→28",
        true,
        (32, 32),
        14,
        3,
        2,
        1,
        1,
        false,
    ),
    op(
        "galeone conv 1→32 7x7 pad6 28→34",
        false,
        (1, 32),
        28,
        7,
        1,
        6,
        0,
        true,
    ),
    op(
        "galeone conv 32→1 7x7 valid 34→28",
        false,
        (32, 1),
        34,
        7,
        1,
        0,
        0,
        false,
    ),
    op(
        "dense-latent conv 3→32 3x3 32x32",
        false,
        (3, 32),
        32,
        3,
        1,
        1,
        0,
        true,
    ),
    op(
        "dense-latent conv 64→128 3x3 8x8",
        false,
        (64, 128),
        8,
        3,
        1,
        1,
        0,
        false,
    ),
    op(
        "dense-latent conv 64→32 3x3 32x32",
        false,
        (64, 32),
        32,
        3,
        1,
        1,
        0,
        false,
    ),
];

fn run(o: &Op, x: &Tensor<4>, w: &Tensor<4>, b: &Tensor<1>, ours: bool, train: bool) {
    let (x, w, b) = (x.clone(), w.clone(), Some(b.clone()));
    let y = if o.transpose {
        let opt =
            ConvTransposeOptions::new([o.stride; 2], [o.padding; 2], [o.padding_out; 2], [1, 1], 1);
        if ours {
            cae::kernels::conv_transpose2d(x, w, b, opt, Act::Identity)
        } else {
            burn::tensor::module::conv_transpose2d(x, w, b, opt)
        }
    } else {
        let opt = ConvOptions::new([o.stride; 2], [o.padding; 2], [1, 1], 1);
        if ours {
            cae::kernels::conv2d(x, w, b, opt, Act::Identity)
        } else {
            burn::tensor::module::conv2d(x, w, b, opt)
        }
    };
    if train {
        let _ = y.sum().backward();
    } else {
        let _ = y.into_data();
    }
}

/// CPU time of all this process's threads, in ms (from `/proc`; 0 where unavailable): unlike
/// wall time it does not count waiting for a core on a busy machine.
fn cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    cae::kernels::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let filter = args
        .iter()
        .position(|a| a == "--filter")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let (batch, rounds) = (arg("--batch", 128), arg("--rounds", 7));
    println!(
        "batch {batch}, {} threads, median of {rounds} alternating rounds; ms per call",
        rayon::current_num_threads()
    );
    println!(
        "| op | phase | burn ms | cae ms | speed-up | burn cpu-ms | cae cpu-ms | cpu speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in OPS.iter().filter(|o| o.name.contains(&filter)) {
        for train in [false, true] {
            let device = if train {
                Device::flex().autodiff()
            } else {
                Device::flex()
            };
            let u = Distribution::Uniform(-1.0, 1.0);
            let x = Tensor::<4>::random([batch, o.cin, o.side, o.side], u, &device);
            let x = if train && !o.first {
                x.require_grad()
            } else {
                x
            };
            let ws = if o.transpose {
                [o.cin, o.cout, o.kernel, o.kernel]
            } else {
                [o.cout, o.cin, o.kernel, o.kernel]
            };
            let w = Tensor::<4>::random(ws, u, &device);
            let b = Tensor::<1>::random([o.cout], u, &device);
            let (w, b) = if train {
                (w.require_grad(), b.require_grad())
            } else {
                (w, b)
            };
            // Enough calls per round for ~50 ms, at least one.
            let started = Instant::now();
            run(o, &x, &w, &b, false, train);
            run(o, &x, &w, &b, true, train);
            let calls = (0.1 / started.elapsed().as_secs_f64()).ceil().max(1.0) as usize;
            let mut t: [[Vec<f64>; 2]; 2] = Default::default();
            for _ in 0..rounds {
                for ours in [false, true] {
                    let (wall, cpu) = (Instant::now(), cpu_ms());
                    for _ in 0..calls {
                        run(o, &x, &w, &b, ours, train);
                    }
                    let n = calls as f64;
                    t[ours as usize][0].push(wall.elapsed().as_secs_f64() * 1000.0 / n);
                    t[ours as usize][1].push((cpu_ms() - cpu) / n);
                }
            }
            let [[bw, bc], [cw, cc]] = t.map(|v| v.map(median));
            let phase = if train { "train" } else { "infer" };
            println!(
                "| {} | {phase} | {bw:.2} | {cw:.2} | {:.2}x | {bc:.2} | {cc:.2} | {:.2}x |",
                o.name,
                bw / cw,
                bc / cc
            );
        }
    }
}
