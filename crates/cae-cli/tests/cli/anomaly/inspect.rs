//! The inspection recipe end to end: an `inspect` segmentation network trained on synthetic
//! anomalies (`--synthetic`, `--augment`, `--normalize`, `--schedule`), thresholded, evaluated
//! beside the per-pixel Gaussian baseline, scored with a contact sheet; and every recipe option
//! given to a model kind that cannot use it.

use super::mvtec::make_mvtec;
use crate::util::*;

/// Trains a two-epoch inspection run on the generated MVTec folder `mv` into `out`.
fn inspect_run(d: &Dir, out: &str) -> std::process::Output {
    run(
        &d.path,
        &[
            "train",
            "--arch",
            "inspect",
            "--data",
            "mv",
            "--synthetic",
            "dark,texture,crack",
            "--augment",
            "flip",
            "--normalize",
            "median",
            "--schedule",
            "cosine",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--val-fraction",
            "0.25",
            "--out",
            out,
        ],
    )
}

#[test]
fn inspection_recipe_trains_thresholds_evaluates_with_baselines_and_draws_a_sheet() {
    let d = Dir::new("anomaly-inspect");
    make_mvtec(&d, "mv");
    ok(&inspect_run(&d, "run"));
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    for line in [
        "synthetic = \"dark,texture,crack@0.5\"",
        "augment = \"flip\"",
        "normalize = \"median\"",
        "schedule = \"cosine\"",
        // A cosine schedule anneals to the settled model: later commands use the last epoch.
        "keep = \"last\"",
        "loss = \"focal\"",
        "output_channels = 1",
    ] {
        assert!(config.contains(line), "config lacks {line}:\n{config}");
    }
    let metrics = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "val_auroc")
        .expect("a val_auroc column");
    for line in metrics.lines().skip(1) {
        let v: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&v), "{line}");
    }
    // The default score of a segmentation run is the mask score.
    let t = json(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--fpr", "0.2", "--json"],
    ));
    assert_eq!(t["threshold"]["score"]["kind"], "mask");
    let e = json(&run(&d.path, &["anomaly", "eval", "run", "--json"]));
    assert!(e["image_auroc"].as_f64().is_some());
    assert!(e["pixel"]["auroc"].as_f64().is_some());
    let baselines = e["baselines"].as_array().unwrap();
    // The per-pixel Gaussian's three statistics, then the aligned patch neighbours.
    assert_eq!(baselines.len(), 4);
    assert_eq!(
        baselines[3]["baseline"],
        "aligned patch neighbours (no learning)"
    );
    for b in baselines {
        let a = b["image_auroc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{b}");
        assert!(b["at_threshold"]["f1"].as_f64().is_some(), "{b}");
    }
    let text = ok(&run(&d.path, &["anomaly", "eval", "run"]));
    assert!(text.contains("baseline per-pixel Gaussian"), "{text}");
    assert!(text.contains("baseline aligned patch neighbours"), "{text}");
    // The painted validation set is the one training logged val_auroc on: the kept weights
    // (the last epoch's, after a cosine schedule) score it the same, and its masks give a pixel
    // AUROC.
    let painted = json(&run(
        &d.path,
        &["anomaly", "eval", "run", "--partition", "painted", "--json"],
    ));
    let logged: f64 = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(col)
        .unwrap()
        .parse()
        .unwrap();
    let scored = painted["image_auroc"].as_f64().unwrap();
    assert!(
        (scored - logged).abs() < 1e-5,
        "eval {scored} vs logged {logged}"
    );
    assert!(painted["pixel"]["auroc"].as_f64().is_some(), "{painted}");
    assert!(
        painted["source"]
            .as_str()
            .unwrap()
            .contains("painted validation"),
        "{painted}"
    );
    let quiet = ok(&run(&d.path, &["anomaly", "eval", "run", "--no-baseline"]));
    assert!(!quiet.contains("baseline"), "{quiet}");
    ok(&run(
        &d.path,
        &["anomaly", "score", "run", "--sheet", "sheet.png"],
    ));
    // The run was trained on 32x32 patches without --resize: the whole 256x256 texture is
    // scored at its own size, its map covering every pixel.
    let whole = json(&run(
        &d.path,
        &[
            "anomaly",
            "score",
            "run",
            "--data",
            "texture.png",
            "-o",
            "whole",
            "--json",
        ],
    ));
    assert_eq!(whole["images"].as_array().unwrap().len(), 1);
    let overlay = std::fs::read_dir(d.join("whole"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("an overlay of the whole texture");
    let overlay = image::open(overlay).unwrap();
    assert!(overlay.width() >= 4 * 256, "{}", overlay.width());
    let sheet = image::open(d.join("sheet.png")).unwrap();
    // 8 defective + 4 good overlays, two per row.
    assert!(
        sheet.height() > 5 * sheet.width() / 8,
        "{}x{}",
        sheet.width(),
        sheet.height()
    );
    // Trained on 16x16 crops, the run scores the whole 32x32 patches.
    let crops = d.join("crops");
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "inspect",
            "--data",
            "mv",
            "--synthetic",
            "dark,crack",
            "--augment",
            "crop:16",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--val-fraction",
            "0.25",
            "--out",
            "crops",
        ],
    ));
    assert!(
        std::fs::read_to_string(crops.join("config.toml"))
            .unwrap()
            .contains("augment = \"crop:16\"")
    );
    let e = json(&run(
        &d.path,
        &["anomaly", "eval", "crops", "--json", "--no-baseline"],
    ));
    assert!(e["image_auroc"].as_f64().is_some(), "{e}");
    // A resumed run continues with the same recipe.
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "3"],
    ));
    assert_eq!(
        std::fs::read_to_string(d.join("run/metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
}

#[test]
fn the_aligned_recipe_fits_its_zscore_to_the_training_images_and_takes_their_size_only() {
    let d = Dir::new("anomaly-inspect-aligned");
    make_mvtec(&d, "mv");
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--arch",
            "inspect-aligned",
            "--data",
            "mv",
            "--synthetic",
            "dark,crack",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--val-fraction",
            "0.25",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        run(&d.path, &args)
    };
    ok(&train("run", &[]));
    // The statistics travel with the weights: the PyTorch export holds the per-pixel mean and
    // std of the training patches, not the layer's initial zeros and ones.
    ok(&run(&d.path, &["export", "run", "-o", "w.safetensors"]));
    let bytes = std::fs::read(d.join("w.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let f32s = |key: &str| -> Vec<f32> {
        let [a, b] = [0, 1].map(|i| header[key]["data_offsets"][i].as_u64().unwrap() as usize);
        bytes[8 + header_len + a..8 + header_len + b]
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(header["0.mean"]["shape"], serde_json::json!([1, 32, 32]));
    let (mean, std) = (f32s("0.mean"), f32s("0.std"));
    assert!(mean.iter().all(|m| (0.05..0.95).contains(m)), "{mean:?}");
    assert!(std.iter().any(|s| *s > 0.0 && *s != 1.0), "{std:?}");
    let e = json(&run(&d.path, &["anomaly", "eval", "run", "--json"]));
    assert!(e["image_auroc"].as_f64().is_some(), "{e}");
    // A whole 256x256 texture is not the part the statistics describe.
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--fpr", "0.2"],
    ));
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly",
                "score",
                "run",
                "--data",
                "texture.png",
                "-o",
                "whole",
            ],
        ),
        // One message for one rule (issue 16: the denoiser had its own wording of the spec's).
        "holds per-pixel statistics of 32x32 images and cannot run on 256x256 images; give it images of its training size (--resize 32x32)",
    );
    fails_with(
        &train("crops", &["--augment", "crop:16"]),
        "holds per-pixel statistics of 32x32 images and cannot run on 16x16 images",
    );
    // A reconstruction CAE may start with a zscore layer too, but not be pretrained by stages.
    std::fs::write(
        d.join("z.toml"),
        "name = \"z\"\n[[encoder]]\ntype = \"zscore\"\n[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\npadding = \"same\"\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\npadding = \"same\"\n",
    )
    .unwrap();
    let stacked = [
        "train",
        "--arch",
        "z.toml",
        "--data",
        "mv",
        "--epochs",
        "1",
        "--stacked",
        "--out",
        "st",
    ];
    fails_with(&run(&d.path, &stacked), "'z' starts with a zscore layer");
}

#[test]
fn recipe_options_on_a_model_kind_that_cannot_use_them_are_one_line_errors() {
    let d = Dir::new("anomaly-inspect-bad");
    make_mvtec(&d, "mv");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "mv", "--epochs", "1", "--out", "bad"];
        args.extend_from_slice(extra);
        run(&d.path, &args)
    };
    fails_with(
        &train(&["--arch", "upsample", "--synthetic", "dark"]),
        "--synthetic trains a segmentation network",
    );
    fails_with(&train(&["--arch", "inspect"]), "train it with --synthetic");
    fails_with(
        &train(&["--arch", "inspect", "--synthetic", "dark", "--loss", "mse"]),
        "use --loss focal",
    );
    fails_with(
        &train(&["--arch", "upsample", "--loss", "focal"]),
        "it needs --synthetic",
    );
    fails_with(
        &train(&["--arch", "inspect", "--synthetic", "cracks"]),
        "unknown kind 'cracks'",
    );
    fails_with(
        &train(&["--arch", "inspect", "--synthetic", "dark@2"]),
        "probability after '@'",
    );
    fails_with(
        &train(&["--arch", "upsample", "--augment", "rot45"]),
        "unknown item 'rot45'",
    );
    fails_with(
        &train(&["--arch", "upsample", "--normalize", "mean"]),
        "unknown normalisation 'mean'",
    );
    fails_with(
        &train(&["--arch", "upsample", "--schedule", "step"]),
        "unknown learning-rate schedule",
    );
    fails_with(
        &train(&[
            "--arch",
            "inspect",
            "--synthetic",
            "dark",
            "--noise",
            "gaussian:0.1",
        ]),
        "do not combine",
    );
    fails_with(
        &train(&[
            "--arch",
            "upsample",
            "--augment",
            "rot90",
            "--resize",
            "32x24",
        ]),
        "--augment rot90 turns square images only, but they are 32x24 (HxW)",
    );
    fails_with(
        &train(&["--arch", "upsample", "--augment", "brightness:3"]),
        "brightness:'3' must be a number in (0, 1]",
    );
    fails_with(
        &train(&["--arch", "upsample", "--augment", "flip", "--stacked"]),
        "with --stacked: the later stages train on codes",
    );
    fails_with(
        &train(&[
            "--arch",
            "keras-denoise",
            "--augment",
            "brightness:0.1",
            "--loss",
            "bce",
        ]),
        "with --loss bce: brightness and contrast can push target pixels above 1",
    );
    fails_with(
        &train(&["--arch", "upsample", "--augment", "crop:64"]),
        "--augment crop:64 is larger than the 32x32 (HxW) images",
    );
    fails_with(
        &train(&["--arch", "oneclass", "--augment", "flip,crop:16"]),
        "--augment crop:16",
    );
    assert!(!d.join("bad").exists(), "a failed train left a run behind");
    // Scores of the other model kind.
    ok(&run(
        &d.path,
        &[
            "train", "--data", "mv", "--epochs", "1", "--arch", "upsample", "--out", "rec",
        ],
    ));
    fails_with(
        &run(&d.path, &["anomaly", "eval", "rec", "--score", "mask"]),
        "reconstructs its input",
    );
    ok(&inspect_run(&d, "seg"));
    fails_with(
        &run(&d.path, &["anomaly", "eval", "seg", "--score", "mse"]),
        "use --score mask",
    );
    fails_with(
        &run(&d.path, &["anomaly", "eval", "seg", "--window", "4"]),
        "--window needs --score mask",
    );
    fails_with(
        &run(
            &d.path,
            &["anomaly", "eval", "seg", "--score", "mask", "--window", "4"],
        ),
        "odd number",
    );
    fails_with(
        &run(
            &d.path,
            &["anomaly", "eval", "seg", "--score", "mse", "--window", "9"],
        ),
        "--window only applies to --score mask",
    );
}

#[test]
fn a_segmentation_run_that_learnt_nothing_is_reported() {
    let d = Dir::new("anomaly-inspect-chance");
    make_mvtec(&d, "mv");
    // A learning rate this small leaves the network at its initial guess.
    let o = run(
        &d.path,
        &[
            "train",
            "--arch",
            "inspect",
            "--data",
            "mv",
            "--synthetic",
            "dark",
            "--epochs",
            "1",
            "--lr",
            "1e-12",
            "--val-fraction",
            "0.5",
            "--out",
            "run",
        ],
    );
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("warning: after 1 epochs") && err.contains("0.5 is chance"),
        "{err}"
    );
}

#[test]
fn a_test_folder_with_an_empty_abnormal_class_is_a_clear_error() {
    let d = Dir::new("anomaly-inspect-empty");
    make_mvtec(&d, "mv");
    ok(&inspect_run(&d, "seg"));
    let normal = d.join("set/normal");
    std::fs::create_dir_all(&normal).unwrap();
    std::fs::create_dir_all(d.join("set/abnormal")).unwrap();
    for i in 0..3 {
        std::fs::copy(
            d.join(&format!("mv/test/good/00{i}.png")),
            normal.join(format!("{i}.png")),
        )
        .unwrap();
    }
    fails_with(
        &run(&d.path, &["anomaly", "eval", "seg", "--data", "set"]),
        "3 normal and 0 anomalous",
    );
}

#[test]
fn fused_score_fits_its_norms_and_reference_with_the_threshold_and_scores_everywhere() {
    let d = Dir::new("anomaly-inspect-fused");
    make_mvtec(&d, "mv");
    ok(&inspect_run(&d, "run"));
    // The norms are fitted with the threshold: before one, a fused score is refused.
    fails_with(
        &run(&d.path, &["anomaly", "eval", "run", "--score", "fused"]),
        "--score fused --fpr 0.05",
    );
    let mask = json(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--fpr", "0.2", "--json"],
    ));
    assert_eq!(mask["threshold"]["score"]["kind"], "mask");
    assert!(mask["threshold"].get("fusion").is_none(), "{mask}");
    fails_with(
        &run(&d.path, &["anomaly", "eval", "run", "--score", "fused"]),
        "is on score mask",
    );
    let t = json(&run(
        &d.path,
        &[
            "anomaly",
            "threshold",
            "run",
            "--score",
            "fused",
            "--fpr",
            "0.2",
            "--json",
        ],
    ));
    let threshold = &t["threshold"];
    assert_eq!(threshold["score"]["kind"], "fused");
    assert_eq!(threshold["score"]["weight"], 0.75);
    for part in ["model", "neighbours"] {
        let std = threshold["fusion"][part]["std"].as_f64().unwrap();
        assert!(std > 0.0 && std.is_finite(), "{threshold}");
    }
    // The reference is the training partition (45 of the 60 patches), as loaded.
    let reference = std::fs::read(d.join("run/reference.safetensors")).unwrap();
    assert!(reference.len() >= 45 * 32 * 32 * 4, "{}", reference.len());
    let e = json(&run(&d.path, &["anomaly", "eval", "run", "--json"]));
    assert_eq!(e["score"]["kind"], "fused", "{e}");
    let auroc = e["image_auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc), "{e}");
    assert!(e["at_threshold"]["f1"].as_f64().is_some(), "{e}");
    assert!(e["pixel"]["auroc"].as_f64().is_some(), "{e}");
    let scored = json(&run(&d.path, &["anomaly", "score", "run", "--json"]));
    let images = scored["images"].as_array().unwrap();
    assert!(!images.is_empty());
    // `cae serve` gives one image the score `anomaly score` gave it.
    let first = images[0]["path"].as_str().unwrap().to_string();
    let png = std::fs::read(d.join(&first)).unwrap();
    let server = crate::serve::Server::start(&d.path, "run", &[]);
    let answer = crate::serve::request(server.addr, "POST", "/v1/score", Some("image/png"), &png);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let served = answer.json()["score"].as_f64().unwrap();
    let cli = images[0]["score"].as_f64().unwrap();
    assert!((served - cli).abs() < 1e-4, "served {served} vs cli {cli}");
    drop(server);
    // Images of another size than the reference are refused with one line.
    fails_with(
        &run(
            &d.path,
            &["anomaly", "score", "run", "--data", "texture.png"],
        ),
        "1x32x32",
    );
    // A lost or damaged reference is one line naming it, for the CLI and the server alike.
    std::fs::write(d.join("run/reference.safetensors"), b"not tensors").unwrap();
    fails_with(
        &run(&d.path, &["anomaly", "score", "run"]),
        "reference.safetensors",
    );
    let o = cae()
        .args(["serve", "run", "--addr", "127.0.0.1:0"])
        .current_dir(&d.path)
        .output()
        .unwrap();
    fails_with(&o, "reference.safetensors");
    // The model part's window follows the mask score's rule.
    fails_with(
        &run(
            &d.path,
            &[
                "anomaly",
                "threshold",
                "run",
                "--score",
                "fused",
                "--window",
                "4",
                "--fpr",
                "0.2",
            ],
        ),
        "--window 4",
    );
}
