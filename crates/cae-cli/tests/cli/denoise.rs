//! Denoising end to end: `cae train --noise` (saved in the run, resumable exactly), the SSIM
//! losses, `cae denoise` on image files of any size and as a benchmark, and the bad inputs:
//! noise typos, an RGB image for a grey model.

use crate::util::*;

/// Trains pytorch-small on the fixture with Gaussian noise (BCE: its sigmoid output collapses
/// to black under MSE on digits); returns the scratch dir.
fn trained(name: &str) -> Dir {
    let d = Dir::new(name);
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pytorch-small",
            "--data",
            &mnist_arg(),
            "--loss",
            "bce",
            "--noise",
            "gaussian:0.5",
            "--epochs",
            "8",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--out",
            "run",
        ],
    ));
    d
}

/// A grey or RGB PNG of `w×h` with a bright square on black (a stroke-like image).
fn write_png(d: &Dir, name: &str, w: u32, h: u32, rgb: bool) -> String {
    let bright =
        |x: u32, y: u32| (x > w / 3 && x < 2 * w / 3 && y > h / 4 && y < h / 2) as u8 * 230;
    let path = d.join(name);
    if rgb {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([bright(x, y), 0, bright(x, y)]))
            .save(&path)
            .unwrap();
    } else {
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([bright(x, y)]))
            .save(&path)
            .unwrap();
    }
    path.display().to_string()
}

#[test]
fn denoising_cae_beats_the_noisy_input_on_files_and_in_the_benchmark() {
    let d = trained("denoise-main");
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(config.contains("noise = \"gaussian:0.5\""), "{config}");

    // Benchmark mode on the last 200 digits.
    let v = json(&run(
        &d.path,
        &[
            "denoise",
            "run",
            "--data",
            &mnist_arg(),
            "--last",
            "200",
            "--noise",
            "gaussian:0.5",
            "--grid",
            "bench.png",
            "--samples",
            "4",
            "--json",
        ],
    ));
    let r = &v["results"][0];
    assert_eq!(r["noise"], "gaussian:0.5");
    assert_eq!(r["images"], 150, "a quarter tunes the blur: {v}");
    let noisy = r["noisy"]["psnr"].as_f64().unwrap();
    let cae = r["cae"]["psnr"].as_f64().unwrap();
    // σ = 0.5 noise on digits: the noisy input is about 9.4 dB.
    assert!((8.5..10.5).contains(&noisy), "{v}");
    assert!(cae > noisy + 3.0, "CAE {cae} dB vs noisy {noisy} dB: {v}");
    assert!(r["median3"]["psnr"].as_f64().unwrap() > noisy, "{v}");
    let grid = image::open(d.join("bench.png")).unwrap();
    // 5 rows (clean, noisy, median, gaussian, CAE) of 4 digits scaled x3
    assert_eq!(
        (grid.width(), grid.height()),
        (4 * 84 + 5 * 2, 5 * 84 + 6 * 2)
    );

    // File mode on an image of another size: same size out, noisy copy beside, scored.
    let img = write_png(&d, "square.png", 45, 30, false);
    let v = json(&run(
        &d.path,
        &[
            "denoise",
            "run",
            &img,
            "-o",
            "out",
            "--add-noise",
            "gaussian:0.5",
            "--json",
        ],
    ));
    assert_eq!(v["mode"], "whole");
    let e = &v["images"][0];
    assert!(
        e["psnr"].as_f64().unwrap() > e["noisy_psnr"].as_f64().unwrap(),
        "{v}"
    );
    for f in ["out/square.png", "out/square-noisy.png"] {
        let out = image::open(d.join(f)).unwrap();
        assert_eq!((out.width(), out.height()), (45, 30), "{f}");
        assert_eq!(out.color(), image::ColorType::L8, "{f}");
    }

    // An RGB image for a grey model: one clear line naming the fix.
    let rgb = write_png(&d, "rgb.png", 28, 28, true);
    fails_with(
        &run(&d.path, &["denoise", "run", &rgb, "-o", "out-rgb"]),
        "images have 3 channel(s) but the model takes 1; pass --channels 1",
    );
    // …and with --channels 1 it works.
    ok(&run(
        &d.path,
        &["denoise", "run", &rgb, "-o", "out-rgb", "--channels", "1"],
    ));
    fails_with(
        &run(&d.path, &["denoise", "run", &img]),
        "-o DIR is required",
    );
}

#[test]
fn noise_spec_typos_are_clear_errors() {
    let d = Dir::new("denoise-typos");
    let train = |noise: &str| {
        run(
            &d.path,
            &[
                "train",
                "--data",
                &mnist_arg(),
                "--noise",
                noise,
                "--out",
                "run",
            ],
        )
    };
    fails_with(
        &train("gausian:0.5"),
        "unknown noise model 'gausian' (did you mean 'gaussian'?)",
    );
    fails_with(
        &train("gaussian"),
        "needs a level after ':', e.g. gaussian:0.5",
    );
    fails_with(
        &train("gaussian:0.3,salt_pepper:1.5"),
        "level '1.5' of salt_pepper is a probability and must be in [0, 1]",
    );
    assert!(
        !d.join("run").exists(),
        "a failed start must not create the run"
    );
    fails_with(
        &run(
            &d.path,
            &[
                "train",
                "--data",
                &mnist_arg(),
                "--loss",
                "mse+ssim:2",
                "--out",
                "r",
            ],
        ),
        "the SSIM weight must be a number in [0, 1]",
    );
}

fn losses(path: std::path::PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn noisy_ssim_training_resumes_exactly() {
    let d = Dir::new("denoise-resume");
    let args = |out: &'static str, epochs: &'static str| {
        vec![
            "train".to_string(),
            "--data".into(),
            mnist_arg(),
            "--limit".into(),
            "160".into(),
            "--noise".into(),
            "gaussian:0.3,mask:0.1".into(),
            "--loss".into(),
            "mse+ssim:0.5".into(),
            "--epochs".into(),
            epochs.into(),
            "--batch-size".into(),
            "16".into(),
            "--out".into(),
            out.into(),
        ]
    };
    ok(&cae()
        .args(args("full", "4"))
        .current_dir(&d.path)
        .output()
        .unwrap());
    ok(&cae()
        .args(args("split", "2"))
        .current_dir(&d.path)
        .output()
        .unwrap());
    ok(&run(
        &d.path,
        &["train", "--resume", "split", "--epochs", "4"],
    ));
    let full = losses(d.join("full/metrics.csv"));
    assert_eq!(full.len(), 5);
    assert_eq!(full, losses(d.join("split/metrics.csv")));
    let config = std::fs::read_to_string(d.join("split/config.toml")).unwrap();
    assert!(config.contains("loss = \"mse+ssim:0.5\""), "{config}");
    assert!(
        config.contains("noise = \"gaussian:0.3,mask:0.1\""),
        "{config}"
    );
}
