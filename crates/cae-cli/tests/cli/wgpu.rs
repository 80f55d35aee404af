//! `--device wgpu` end to end, on the first wgpu adapter (Mesa's software Vulkan driver,
//! lavapipe, where there is no GPU): training lowers the loss and starts from the weights flex
//! starts from; a checkpoint written on wgpu resumes on flex and the other way round, ending
//! where a run that stayed on one device ends; `eval`, `anomaly eval|score`, `encode` and
//! `serve` give what flex gives for the same run.
//!
//! Built only with `--features wgpu` (`.ci/wgpu` runs it); lavapipe trains at a few images/s,
//! so the runs are tiny.

use crate::anomaly::one_class_run;
use crate::serve::{Server, digit_png, request};
use crate::util::*;
use std::path::Path;

/// Relative agreement asked of two devices: float rounding differs between Burn's wgpu ops and
/// our flex kernels, and a few Adam steps carry it on.
const TOLERANCE: f64 = 1e-3;

fn close(a: f64, b: f64, what: &str) {
    let scale = a.abs().max(b.abs()).max(1e-6);
    assert!(
        (a - b).abs() <= TOLERANCE * scale,
        "{what}: flex {a} against wgpu {b}"
    );
}

/// The train loss of each epoch in `run/metrics.csv`.
fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .expect("metrics.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// `cae train` of a tiny `upsample` run on 48 digits for `epochs` on `device`; on a working
/// device no driver layer prints an `error:` line of its own (libwayland's `XDG_RUNTIME_DIR`
/// ones, under Mesa's Vulkan layer, when there is no display).
fn train(d: &Dir, out: &str, epochs: &str, device: &str) {
    let o = run(
        &d.path,
        &[
            "train",
            "--arch",
            "upsample",
            "--data",
            &mnist_arg(),
            "--limit",
            "48",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--epochs",
            epochs,
            "--device",
            device,
            "--out",
            out,
        ],
    );
    ok(&o);
    let err = stderr(&o);
    assert!(
        !err.lines().any(|l| l.starts_with("error:")),
        "stray error lines on {device}: {err}"
    );
}

fn resume(d: &Dir, out: &str, epochs: &str, device: &str) {
    ok(&run(
        &d.path,
        &[
            "train", "--resume", out, "--epochs", epochs, "--device", device,
        ],
    ));
}

#[test]
fn training_on_wgpu_lowers_the_loss_and_checkpoints_move_between_devices() {
    let d = Dir::new("wgpu-train");
    train(&d, "flex", "2", "flex");
    train(&d, "wgpu", "2", "wgpu");
    let (on_flex, on_wgpu) = (train_losses(&d.join("flex")), train_losses(&d.join("wgpu")));
    assert_eq!((on_flex.len(), on_wgpu.len()), (2, 2));
    assert!(on_wgpu[1] < on_wgpu[0], "wgpu losses {on_wgpu:?}");
    // Fresh weights of a seed are the same on both devices, so the runs stay together.
    for (a, b) in on_flex.iter().zip(&on_wgpu) {
        close(*a, *b, "train loss");
    }
    // One epoch on one device, the second on the other.
    train(&d, "wgpu-then-flex", "1", "wgpu");
    resume(&d, "wgpu-then-flex", "2", "flex");
    train(&d, "flex-then-wgpu", "1", "flex");
    resume(&d, "flex-then-wgpu", "2", "wgpu");
    for moved in ["wgpu-then-flex", "flex-then-wgpu"] {
        let losses = train_losses(&d.join(moved));
        assert_eq!(losses.len(), 2, "{moved}");
        for (a, b) in on_flex.iter().zip(&losses) {
            close(*a, *b, moved);
        }
    }
}

/// The f32 values of a version-1 `.npy` file.
fn npy_values(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("an .npy file");
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The `score` of every line `anomaly score --jsonl` printed.
fn scores(out: &str) -> Vec<f64> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["score"].as_f64().expect("a score")
        })
        .collect()
}

#[test]
fn eval_anomaly_encode_and_serve_on_wgpu_agree_with_flex() {
    let d = Dir::new("wgpu-commands");
    one_class_run(&d, "run", "2");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    let data = mnist_arg();
    let on = |device: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--device", device]);
        run(&d.path, &all)
    };

    let eval = |device| {
        json(&on(
            device,
            &["eval", "run", "--data", &data, "--limit", "32", "--json"],
        ))
    };
    let (a, b) = (eval("flex"), eval("wgpu"));
    for key in ["mse", "psnr", "ssim"] {
        close(a[key].as_f64().unwrap(), b[key].as_f64().unwrap(), key);
    }

    let anomaly = |device| json(&on(device, &["anomaly", "eval", "run", "--json"]));
    let (a, b) = (anomaly("flex"), anomaly("wgpu"));
    assert_eq!(a["images"], b["images"]);
    close(
        a["image_auroc"].as_f64().unwrap(),
        b["image_auroc"].as_f64().unwrap(),
        "image AUROC",
    );
    let score = |device| scores(&ok(&on(device, &["anomaly", "score", "run", "--jsonl"])));
    let (a, b) = (score("flex"), score("wgpu"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        close(*x, *y, "anomaly score");
    }

    for device in ["flex", "wgpu"] {
        let out = format!("codes-{device}.npy");
        ok(&on(
            device,
            &[
                "encode", "run", "--data", &data, "--limit", "16", "-o", &out,
            ],
        ));
    }
    let (a, b) = (
        npy_values(&d.join("codes-flex.npy")),
        npy_values(&d.join("codes-wgpu.npy")),
    );
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-3f32, |m, v| m.max(v.abs())) as f64;
    for (x, y) in a.iter().zip(&b) {
        assert!(
            ((x - y).abs() as f64) <= TOLERANCE * scale,
            "code value: flex {x} against wgpu {y}"
        );
    }

    let digit = digit_png(3);
    let served: Vec<f64> = ["flex", "wgpu"]
        .iter()
        .map(|device| {
            let mut server = Server::start(&d.path, "run", &["--device", device]);
            let answer = request(server.addr, "POST", "/v1/score", Some("image/png"), &digit);
            assert_eq!(answer.status, 200, "{device}");
            let score = answer.json()["score"].as_f64().expect("a score");
            server.terminate();
            assert_eq!(server.wait().code(), Some(0), "{}", server.stderr());
            score
        })
        .collect();
    close(served[0], served[1], "served score");
}

#[test]
fn wgpu_without_a_vulkan_driver_is_one_error_line() {
    let d = Dir::new("wgpu-no-driver");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let o = cae()
        .args([
            "eval",
            "run",
            "--data",
            &mnist_arg(),
            "--limit",
            "8",
            "--device",
            "wgpu",
        ])
        // wgpu tries Vulkan, then OpenGL: hiding Vulkan's drivers alone leaves Mesa's EGL
        // (llvmpipe), on which it runs. Hide both loaders' driver lists.
        .env("VK_ICD_FILENAMES", d.join("no-such-driver.json"))
        .env("VK_DRIVER_FILES", d.join("no-such-driver.json"))
        .env(
            "__EGL_VENDOR_LIBRARY_FILENAMES",
            d.join("no-such-vendor.json"),
        )
        .current_dir(&d.path)
        .output()
        .expect("run cae");
    fails_with(
        &o,
        "device 'wgpu' is not usable on this machine: wgpu found no Vulkan",
    );
}
