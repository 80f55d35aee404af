//! `cae anomaly` and `cae data make-defects|make-labels` end to end: one-class training with
//! monitors, thresholds, scoring with overlays, evaluation on labelled digits and on a small
//! generated MVTec AD folder, the FPR promise on unseen normal digits, and every bad input.

mod inspect;
mod mvtec;

use crate::util::*;
use mvtec::make_mvtec;
use std::path::Path;

/// Trains a fast one-class run on the fixture: digit 1 normal (about 30 training images),
/// 30% test, 30% validation.
pub(crate) fn one_class_run(d: &Dir, out: &str, epochs: &str) {
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "upsample",
            "--data",
            &mnist_arg(),
            "--normal-class",
            "1",
            "--test-fraction",
            "0.3",
            "--val-fraction",
            "0.3",
            "--epochs",
            epochs,
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--out",
            out,
        ],
    ));
}

#[test]
fn one_class_run_threshold_score_and_eval() {
    let d = Dir::new("anomaly-e2e");
    one_class_run(&d, "run", "12");
    let metrics = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
    let header = metrics.lines().next().unwrap();
    assert!(header.ends_with("anomalous_mse,normal_mse"), "{header}");
    let last: Vec<f64> = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    // Held-out anomalous digits reconstruct worse than held-out ones (digit 1 is normal).
    assert!(last[last.len() - 2] > last[last.len() - 1], "{metrics}");
    assert!(d.join("run/monitors.png").is_file());

    let t = json(&run(
        &d.path,
        &[
            "anomaly",
            "threshold",
            "run",
            "--percentile",
            "95",
            "--json",
        ],
    ));
    assert!(t["threshold"]["image"].as_f64().unwrap() > 0.0);
    assert_eq!(t["threshold"]["method"]["percentile"], 95.0);
    assert!(t["threshold"]["fitted_on"]["normal"].as_u64().unwrap() > 5);
    assert!(d.join("run/threshold.json").is_file());

    let e = json(&run(
        &d.path,
        &["anomaly", "eval", "run", "-o", "eval", "--json"],
    ));
    assert_eq!(e["images"], 150);
    let auroc = e["image_auroc"].as_f64().unwrap();
    assert!(auroc > 0.8 && auroc <= 1.0, "digit-1 AUROC {auroc}");
    let c = &e["at_threshold"]["confusion"];
    let total: u64 = ["tp", "fp", "tn", "fn"]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 150);
    assert_eq!(e["per_class"].as_array().unwrap().len(), 9);
    for f in ["histogram.png", "roc.png", "scores.csv"] {
        assert!(d.join("eval").join(f).is_file(), "{f}");
    }

    let s = json(&run(
        &d.path,
        &[
            "anomaly",
            "score",
            "run",
            "-o",
            "pics",
            "--max-overlays",
            "3",
            "--json",
        ],
    ));
    let images = s["images"].as_array().unwrap();
    assert_eq!(images.len(), 150);
    let n = images[0]["normalized"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&n));
    let flagged = images
        .iter()
        .filter(|i| i["anomalous"].as_bool().unwrap())
        .count();
    assert_eq!(flagged as u64, s["flagged"].as_u64().unwrap());
    assert!(flagged as u64 == c["tp"].as_u64().unwrap() + c["fp"].as_u64().unwrap());
    let pngs = std::fs::read_dir(d.join("pics")).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "png")
    });
    assert_eq!(pngs.count(), 3);
    // Without --max-overlays: the first 100 of the 150 images, and the summary says so.
    let default = run(&d.path, &["anomaly", "score", "run", "-o", "pics100"]);
    ok(&default);
    assert!(
        stderr(&default)
            .contains("pictures of the first 100 (--max-overlays N for more) in pics100"),
        "{}",
        stderr(&default)
    );
    let pngs = std::fs::read_dir(d.join("pics100")).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "png")
    });
    assert_eq!(pngs.count(), 100);
    // A mistyped score kind is met with the nearest name.
    fails_with(
        &run(&d.path, &["anomaly", "score", "run", "--score", "maks"]),
        "unknown score 'maks': expected mse, mae, ssim, max-smoothed, mask or fused (did you mean 'mask'?)",
    );
    // The plain table has a header and one line per image.
    let table = ok(&run(&d.path, &["anomaly", "score", "run"]));
    assert_eq!(table.lines().count(), 151);
}

#[test]
fn resumed_one_class_run_keeps_its_monitors() {
    let d = Dir::new("anomaly-resume");
    one_class_run(&d, "run", "2");
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "3"],
    ));
    let metrics = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 4, "{metrics}");
    for line in metrics.lines().skip(1) {
        assert!(
            !line.ends_with(',') && line.split(',').count() == 7,
            "{line}"
        );
    }
}

#[test]
fn labelling_without_a_threshold_is_a_clear_error() {
    let d = Dir::new("anomaly-nothreshold");
    one_class_run(&d, "run", "1");
    fails_with(
        &run(&d.path, &["anomaly", "score", "run"]),
        "no threshold fitted yet",
    );
    // F1 needs anomalies; --fpr must be a rate; the run's test partition needs --test-fraction.
    fails_with(
        &run(&d.path, &["anomaly", "threshold", "run", "--fpr", "2"]),
        "--fpr 2",
    );
    fails_with(
        &run(&d.path, &["anomaly", "threshold", "run"]),
        "--percentile 99",
    );
    ok(&run(
        &d.path,
        &[
            "train",
            "--data",
            &mnist_arg(),
            "--classes",
            "1",
            "--epochs",
            "1",
            "--arch",
            "pytorch-small",
            "--out",
            "plain",
        ],
    ));
    fails_with(
        &run(&d.path, &["anomaly", "threshold", "plain", "--f1"]),
        "needs normal and anomalous images",
    );
    fails_with(
        &run(&d.path, &["anomaly", "eval", "plain"]),
        "has no test partition",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly",
                "eval",
                "run",
                "--data",
                &mnist_arg(),
                "--normal-class",
                "cat",
            ],
        ),
        "no class 'cat'",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly",
                "eval",
                "run",
                "--data",
                &mnist_arg(),
                "--classes",
                "1",
            ],
        ),
        "needs normal and anomalous images",
    );
}

#[test]
fn empty_test_sets_are_clear_errors() {
    let d = Dir::new("anomaly-empty");
    one_class_run(&d, "run", "1");
    std::fs::create_dir_all(d.join("nothing")).unwrap();
    fails_with(
        &run(&d.path, &["anomaly", "eval", "run", "--data", "nothing"]),
        "no images found",
    );
    make_mvtec(&d, "mv");
    for entry in std::fs::read_dir(d.join("mv/test")).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly", "eval", "run", "--data", "mv", "--resize", "28x28",
            ],
        ),
        "holds no images",
    );
}

#[test]
fn make_labels_then_train_one_class_on_an_npy() {
    let d = Dir::new("anomaly-labels");
    ok(&run(
        &d.path,
        &[
            "data",
            "make-labels",
            "--counts",
            "3,2",
            "-o",
            "x_labels.npy",
        ],
    ));
    // An npy of 5 4x4 images: three dark, two bright.
    let pixels: Vec<u8> = (0..5)
        .flat_map(|i| [if i < 3 { 20 } else { 230 }; 16])
        .collect();
    d.write("x.npy", &npy_u8("5, 4, 4", &pixels));
    let o = run(
        &d.path,
        &[
            "train",
            "--arch",
            "galeone",
            "--data",
            "x.npy",
            "--normal-class",
            "0",
            "--val-fraction",
            "0",
            "--epochs",
            "1",
            "--out",
            "run",
            "--json",
        ],
    );
    ok(&o);
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(config.contains("normal_class = \"0\""), "{config}");
    fails_with(
        &run(
            &d.path,
            &["data", "make-labels", "--counts", "0", "-o", "y.npy"],
        ),
        "adds up to 0",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "train",
                "--data",
                "x.npy",
                "--normal-class",
                "7",
                "--out",
                "r2",
            ],
        ),
        "no class '7'",
    );
}

#[test]
fn normal_and_abnormal_folders() {
    let d = Dir::new("anomaly-folders");
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pytorch-small",
            "--data",
            &mnist_arg(),
            "--epochs",
            "1",
            "--out",
            "run",
        ],
    ));
    // 4 dark-ish "normal" images and 3 bright "abnormal" ones.
    for (folder, n, v) in [("normal", 4, 10u8), ("abnormal", 3, 250u8)] {
        for i in 0..n {
            let img =
                image::GrayImage::from_fn(28, 28, |x, _| image::Luma([v.wrapping_add(x as u8)]));
            std::fs::create_dir_all(d.join(&format!("set/{folder}"))).unwrap();
            img.save(d.join(&format!("set/{folder}/{i}.png"))).unwrap();
        }
    }
    let e = json(&run(
        &d.path,
        &["anomaly", "eval", "run", "--data", "set", "--json"],
    ));
    assert_eq!(
        (e["normal"].as_u64(), e["anomalous"].as_u64()),
        (Some(4), Some(3))
    );
    // Bright images are far from anything the model saw: perfectly separated.
    assert_eq!(e["image_auroc"].as_f64(), Some(1.0));
    let t = json(&run(
        &d.path,
        &[
            "anomaly",
            "threshold",
            "run",
            "--data",
            "set",
            "--f1",
            "--json",
        ],
    ));
    assert_eq!(t["threshold"]["fitted_on"]["anomalous"], 3);
    let e = json(&run(
        &d.path,
        &["anomaly", "eval", "run", "--data", "set", "--json"],
    ));
    assert_eq!(e["at_threshold"]["f1"].as_f64(), Some(1.0));
}

/// Digits 500.. of the shared 4,000 (unseen by a run trained on the 500-digit fixture) as an
/// unlabelled `.npy`, or `None` when `../shared` is not there.
fn unseen_digits(d: &Dir) -> Option<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/mnist/mnist4k-images-idx3-ubyte.gz");
    let gz = std::fs::read(src).ok()?;
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).ok()?;
    let pixels = &raw[16 + 500 * 784..];
    let n = pixels.len() / 784;
    let bytes = npy_u8(&format!("{n}, 28, 28"), pixels);
    Some(d.write("unseen.npy", &bytes).display().to_string())
}

/// A `.npy` (version 1.0, uint8) of the given shape, e.g. `"5, 4, 4"`.
fn npy_u8(shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({shape}), }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn an_fpr_threshold_from_normal_images_holds_on_unseen_normal_images() {
    let d = Dir::new("anomaly-fpr");
    let Some(unseen) = unseen_digits(&d) else {
        eprintln!("skipped: ../shared/data/mnist not found");
        return;
    };
    // Every digit is normal here: fitted on 300 held-out fixture digits, measured on 3,500
    // digits the run never saw.
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pytorch-small",
            "--data",
            &mnist_arg(),
            "--val-fraction",
            "0.6",
            "--epochs",
            "2",
            "--out",
            "run",
        ],
    ));
    for target in ["0.05", "0.2"] {
        ok(&run(
            &d.path,
            &["anomaly", "threshold", "run", "--fpr", target],
        ));
        let s = json(&run(
            &d.path,
            &["anomaly", "score", "run", "--data", &unseen, "--json"],
        ));
        let n = s["images"].as_array().unwrap().len();
        assert_eq!(n, 3500);
        let measured = s["flagged"].as_f64().unwrap() / n as f64;
        let target: f64 = target.parse().unwrap();
        eprintln!("FPR target {target}: measured {measured:.4} on {n} unseen normal digits");
        assert!(
            (measured - target).abs() < 0.03,
            "target {target}, measured {measured}"
        );
    }
}

#[test]
fn few_normal_images_warn_that_the_fpr_threshold_sits_at_their_maximum() {
    let d = Dir::new("anomaly-few-normals");
    one_class_run(&d, "run", "1");
    let o = run(&d.path, &["anomaly", "threshold", "run", "--fpr", "0.05"]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("puts the threshold at their highest score") && err.contains("--fpr 0.05"),
        "{err}"
    );
    let o = run(&d.path, &["anomaly", "threshold", "run", "--fpr", "0.5"]);
    ok(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn shards_of_a_folder_a_container_and_an_mvtec_test_concatenate_to_the_unsharded_scores() {
    let d = Dir::new("anomaly-shards");
    one_class_run(&d, "run", "1");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    ok(&run(
        &d.path,
        &[
            "data",
            "export-png",
            &mnist_arg(),
            "-o",
            "pngs",
            "--limit",
            "11",
        ],
    ));
    make_mvtec(&d, "mv");
    ok(&run(
        &d.path,
        &[
            "train", "--arch", "upsample", "--data", "mv", "--epochs", "1", "--out", "mvrun",
        ],
    ));
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "mvrun", "--percentile", "95"],
    ));
    let mnist = mnist_arg();
    for (run_dir, data) in [("run", "pngs"), ("run", mnist.as_str()), ("mvrun", "mv")] {
        let score = |extra: &[&str]| {
            let mut args = vec!["anomaly", "score", run_dir, "--data", data, "--jsonl"];
            args.extend_from_slice(extra);
            ok(&run(&d.path, &args))
        };
        let whole = score(&[]);
        let joined: String = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| score(&["--shard", s]))
            .collect();
        assert!(whole.lines().count() >= 11, "{data}: {whole}");
        assert_eq!(joined, whole, "{data}");
    }
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly", "score", "run", "--data", "pngs", "--shard", "3/3",
            ],
        ),
        "0 <= K < N",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly", "score", "run", "--data", "pngs", "--shard", "5/40",
            ],
        ),
        "fewer images than shards",
    );
}

/// Issue 15: `anomaly score` reads a folder a block of 256 images at a time, so its memory does
/// not grow with the archive. Blocks must not show: 500 digits in `abnormal/` then `good/` (the
/// first block holds no normal image at all) score as the single-block shards do, and the
/// overlays, `scores.csv` and the contact sheet run on across the blocks.
#[test]
fn a_folder_scored_block_by_block_equals_its_single_block_shards() {
    let d = Dir::new("anomaly-blocks");
    one_class_run(&d, "run", "1");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    ok(&run(
        &d.path,
        &[
            "data",
            "export-png",
            &mnist_arg(),
            "-o",
            "flat",
            "--limit",
            "500",
        ],
    ));
    for class in ["abnormal", "good"] {
        std::fs::create_dir_all(d.join(&format!("cells/{class}"))).unwrap();
    }
    let mut good = 0;
    for entry in std::fs::read_dir(d.join("flat")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let class = if name.ends_with("-1.png") {
            good += 1;
            "good"
        } else {
            "abnormal"
        };
        std::fs::rename(&path, d.join(&format!("cells/{class}/{name}"))).unwrap();
    }
    assert!(good > 0 && good < 244, "{good} digits 1");
    let score = |extra: &[&str]| {
        let mut args = vec!["anomaly", "score", "run", "--data", "cells", "--jsonl"];
        args.extend_from_slice(extra);
        ok(&run(&d.path, &args))
    };
    let whole = score(&[]);
    assert_eq!(whole.lines().count(), 500);
    let joined: String = ["0/3", "1/3", "2/3"]
        .iter()
        .map(|s| score(&["--shard", s]))
        .collect();
    assert_eq!(joined, whole);
    ok(&run(
        &d.path,
        &[
            "anomaly",
            "score",
            "run",
            "--data",
            "cells",
            "-o",
            "out",
            "--max-overlays",
            "300",
            "--sheet",
            "sheet.png",
        ],
    ));
    let csv = std::fs::read_to_string(d.join("out/scores.csv")).unwrap();
    assert_eq!(csv.lines().count(), 501);
    assert!(csv.lines().last().unwrap().starts_with("499,"), "{csv}");
    let overlays = std::fs::read_dir(d.join("out"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("png".as_ref()))
        .count();
    assert_eq!(overlays, 300);
    // The sheet's four normal digits come from the second block: it has the twelve pictures of
    // the last shard's sheet (one block, anomalous and normal digits both), not eight.
    ok(&run(
        &d.path,
        &[
            "anomaly", "score", "run", "--data", "cells", "--shard", "2/3", "--sheet", "last.png",
        ],
    ));
    let dims = |f: &str| image::image_dimensions(d.join(f)).unwrap();
    assert_eq!(dims("sheet.png"), dims("last.png"));
}

/// Issue 16: `cae anomaly` converted colour images to grey without a word while `cae eval` (and
/// the server) refused them; now every command follows the run's `--channels` and names the
/// flag when the images do not fit.
#[test]
fn one_channel_rule_for_eval_and_anomaly() {
    let d = Dir::new("one-channel-rule");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "99"],
    ));
    std::fs::create_dir_all(d.join("rgb")).unwrap();
    for k in 0..3u32 {
        image::RgbImage::from_fn(28, 28, |x, y| {
            image::Rgb([(x * 9) as u8, (y * 9) as u8, (k * 80) as u8])
        })
        .save(d.join(&format!("rgb/{k}.png")))
        .unwrap();
    }
    for command in [&["eval", "run"][..], &["anomaly", "score", "run"][..]] {
        let mut args = command.to_vec();
        args.extend(["--data", "rgb"]);
        fails_with(&run(&d.path, &args), "pass --channels 1");
    }
    let scored = ok(&run(
        &d.path,
        &[
            "anomaly",
            "score",
            "run",
            "--data",
            "rgb",
            "--channels",
            "1",
        ],
    ));
    assert_eq!(
        scored.lines().filter(|l| l.contains(".png")).count(),
        3,
        "{scored}"
    );
}
