//! `cae data make-defects` and the MVTec AD layout end to end: generated defects and masks,
//! training on `train/good`, pixel metrics, overlays, and broken layouts. `make_mvtec` is shared
//! with the error tests in `anomaly.rs`.

use crate::util::*;

/// A 256x256 grey texture: diagonal stripes with a little deterministic noise.
fn write_texture(d: &Dir) -> String {
    let img = image::GrayImage::from_fn(256, 256, |x, y| {
        let stripe = if ((x + y) / 6) % 2 == 0 { 90 } else { 160 };
        let noise = ((x * 7919 + y * 104_729) % 23) as u8;
        image::Luma([stripe + noise])
    });
    let p = d.join("texture.png");
    img.save(&p).unwrap();
    p.display().to_string()
}

/// A small MVTec AD folder made by `cae data make-defects`.
pub fn make_mvtec(d: &Dir, out: &str) {
    let texture = write_texture(d);
    ok(&run(
        &d.path,
        &[
            "data",
            "make-defects",
            &texture,
            "-o",
            out,
            "--patch",
            "32",
            "--train",
            "60",
            "--test-good",
            "8",
            "--per-kind",
            "2",
            "--seed",
            "3",
        ],
    ));
}

#[test]
fn mvtec_folder_defects_masks_and_pixel_metrics() {
    let d = Dir::new("anomaly-mvtec");
    make_mvtec(&d, "mv");
    for f in [
        "train/good/059.png",
        "test/good/007.png",
        "test/hole/001.png",
        "ground_truth/hole/001_mask.png",
        "defects.json",
    ] {
        assert!(d.join("mv").join(f).is_file(), "{f}");
    }
    // The same seed writes the same files.
    make_mvtec(&d, "mv2");
    for f in ["test/scratch/000.png", "ground_truth/fold/001_mask.png"] {
        assert_eq!(
            std::fs::read(d.join("mv").join(f)).unwrap(),
            std::fs::read(d.join("mv2").join(f)).unwrap()
        );
    }
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "upsample",
            "--data",
            "mv",
            "--epochs",
            "12",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--val-fraction",
            "0.25",
            "--out",
            "run",
        ],
    ));
    ok(&run(
        &d.path,
        &[
            "anomaly",
            "threshold",
            "run",
            "--score",
            "max-smoothed",
            "--sigma",
            "1",
            "--fpr",
            "0.1",
        ],
    ));
    let e = json(&run(
        &d.path,
        &["anomaly", "eval", "run", "-o", "eval", "--json"],
    ));
    assert_eq!(
        (e["normal"].as_u64(), e["anomalous"].as_u64()),
        (Some(8), Some(12))
    );
    assert_eq!(e["score"]["kind"], "max-smoothed");
    let px = &e["pixel"];
    let (pa, pro) = (px["auroc"].as_f64().unwrap(), px["pro"].as_f64().unwrap());
    assert!(pa > 0.5 && pa <= 1.0 && (0.0..=1.0).contains(&pro), "{px}");
    assert_eq!(e["per_class"].as_array().unwrap().len(), 6);
    assert!(d.join("eval/pro.png").is_file());
    ok(&run(&d.path, &["anomaly", "score", "run", "-o", "pics"]));
    assert!(d.join("pics/0008-cut-000.png").is_file());
    // A score other than the threshold's cannot label images.
    fails_with(
        &run(&d.path, &["anomaly", "score", "run", "--score", "mse"]),
        "fitted on score max-smoothed",
    );

    // Broken layouts: a missing mask, then a mask of the wrong size.
    let mask = d.join("mv/ground_truth/hole/001_mask.png");
    std::fs::rename(&mask, d.join("mask.bak")).unwrap();
    fails_with(&run(&d.path, &["anomaly", "eval", "run"]), "001_mask.png");
    image::GrayImage::new(16, 32).save(&mask).unwrap();
    fails_with(
        &run(&d.path, &["anomaly", "eval", "run"]),
        "mask is 32x16 (HxW)",
    );
}
