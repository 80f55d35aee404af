//! Codes, probes, filters and stacked pretraining end to end: `cae encode` writes .npy files
//! with the right header and shape (the same codes, and `cae eval` the same figures, for a
//! folder read a block at a time), `cae probe` reports real accuracies for codes and pixels,
//! `cae filters` draws mosaics and activation maps (and refuses a model without a first conv),
//! `cae train --stacked` pretrains stage by stage and `probe --finetune` compares inits.

use crate::util::*;

/// The header dict and the payload of a .npy file.
fn npy(path: std::path::PathBuf) -> (String, Vec<u8>) {
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0);
    let header = String::from_utf8(bytes[10..10 + len].to_vec()).unwrap();
    (header, bytes[10 + len..].to_vec())
}

fn train(d: &Dir, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--arch",
        "pytorch-small",
        "--data",
        "",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
        "--out",
        "run",
    ];
    let data = mnist_arg();
    args[4] = &data;
    args.extend_from_slice(extra);
    ok(&run(&d.path, &args));
}

#[test]
fn encode_probe_and_filters_on_a_trained_run() {
    let d = Dir::new("features-main");
    train(&d, &[]);

    // encode: 500 codes of 8x7x7 values, labels beside
    let v = json(&run(
        &d.path,
        &[
            "encode",
            "run",
            "--data",
            &mnist_arg(),
            "-o",
            "codes.npy",
            "--json",
        ],
    ));
    assert_eq!(
        (v["images"].as_u64(), v["dim"].as_u64()),
        (Some(500), Some(392))
    );
    let (header, data) = npy(d.join("codes.npy"));
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (500, 392), }"),
        "{header}"
    );
    assert_eq!(data.len(), 500 * 392 * 4);
    let (header, data) = npy(d.join("codes_labels.npy"));
    assert!(
        header.contains("'descr': '<i8'") && header.contains("(500,)"),
        "{header}"
    );
    // the fixture's first labels are 0, 3, 0, 2, 9
    let first: Vec<i64> = data[..40]
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(first, [0, 3, 0, 2, 9]);
    // The same digits as a folder of PNGs are encoded 256 at a time (issue 15: memory of one
    // block): the blocks do not show in the codes.
    ok(&run(
        &d.path,
        &[
            "data",
            "export-png",
            &mnist_arg(),
            "-o",
            "pngs",
            "--limit",
            "500",
        ],
    ));
    let v = json(&run(
        &d.path,
        &[
            "encode",
            "run",
            "--data",
            "pngs",
            "-o",
            "png-codes.npy",
            "--json",
        ],
    ));
    assert_eq!(v["images"].as_u64(), Some(500));
    assert_eq!(npy(d.join("png-codes.npy")), npy(d.join("codes.npy")));
    // So is `cae eval`'s running mean over the blocks.
    let eval = |data: &str| json(&run(&d.path, &["eval", "run", "--data", data, "--json"]));
    let (blocks, whole) = (eval("pngs"), eval(&mnist_arg()));
    assert_eq!(blocks["images"].as_u64(), Some(500));
    assert_eq!(blocks, whole);

    // probe: both classifiers learn digits from 400 labels; fewer labels, lower accuracy
    let v = json(&run(
        &d.path,
        &[
            "probe",
            "run",
            "--data",
            &mnist_arg(),
            "--test",
            "100",
            "--budgets",
            "30,all",
            "--json",
        ],
    ));
    let rows = v["probe"]["rows"].as_array().unwrap();
    assert_eq!(v["probe"]["test"], 100);
    assert_eq!(
        (rows[0]["labels"].as_u64(), rows[1]["labels"].as_u64()),
        (Some(30), Some(400))
    );
    for key in ["codes_accuracy", "pixels_accuracy"] {
        let few = rows[0][key].as_f64().unwrap();
        let all = rows[1][key].as_f64().unwrap();
        assert!(all > 0.7 && all <= 1.0, "{key} with 400 labels: {v}");
        assert!(few > 0.3, "{key} with 30 labels: {v}");
    }

    // filters: 16 filters of 1x3x3 in a 4x4 mosaic, scaled to 48 px; activations beside
    let digit = d.join("digit.png");
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([((x as i32 - 14).abs() < 3 && y > 4 && y < 24) as u8 * 255])
    })
    .save(&digit)
    .unwrap();
    let v = json(&run(
        &d.path,
        &[
            "filters",
            "run",
            "-o",
            "filters.png",
            "--activations",
            digit.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(v["shape"], serde_json::json!([16, 1, 3, 3]));
    let mosaic = image::open(d.join("filters.png")).unwrap();
    assert_eq!(
        (mosaic.width(), mosaic.height()),
        (4 * 48 + 5 * 3, 4 * 48 + 5 * 3)
    );
    let acts = image::open(d.join("filters-activations.png")).unwrap();
    // input, then two encoder layers (16x14x14 and 8x7x7), each block ≥ 48 px high
    assert!(acts.height() >= 3 * 48, "{}", acts.height());
}

#[test]
fn filters_refuses_a_model_without_a_first_conv_and_probe_needs_labels() {
    let d = Dir::new("features-bad");
    d.write(
        "pool-first.toml",
        br#"
name = "pool-first"
[[encoder]]
type = "max_pool"
size = 2
[[encoder]]
type = "conv"
filters = 4
kernel = 3
activation = "relu"
[[decoder]]
type = "upsample"
factor = 2
[[decoder]]
type = "conv"
filters = "$channels"
kernel = 3
"#,
    );
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pool-first.toml",
            "--data",
            &mnist_arg(),
            "--limit",
            "32",
            "--epochs",
            "1",
            "--out",
            "run",
        ],
    ));
    fails_with(
        &run(&d.path, &["filters", "run", "-o", "f.png"]),
        "the first encoder layer is max_pool, not a conv",
    );
    // patches of a photo-like image: a data set without labels
    image::GrayImage::from_fn(56, 84, |x, y| image::Luma([((x * y) % 251) as u8]))
        .save(d.join("big.png"))
        .unwrap();
    let v = json(&run(
        &d.path,
        &[
            "patches",
            "big.png",
            "--side",
            "28",
            "-o",
            "patches.npy",
            "--json",
        ],
    ));
    assert_eq!(
        (v["patches"].as_u64(), v["shape"].as_str()),
        (Some(6), Some("1x28x28"))
    );
    fails_with(
        &run(&d.path, &["probe", "run", "--data", "patches.npy"]),
        "the data has no labels",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "probe",
                "run",
                "--data",
                &mnist_arg(),
                "--budgets",
                "10,lots",
            ],
        ),
        "'lots' is not a positive number or 'all'",
    );
}

#[test]
fn stacked_pretraining_runs_end_to_end_and_feeds_a_classifier() {
    let d = Dir::new("features-stacked");
    let v = json(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "keras-denoise",
            "--loss",
            "bce",
            "--data",
            &mnist_arg(),
            "--limit",
            "200",
            "--stacked",
            "--stack-epochs",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--out",
            "run",
            "--json",
        ],
    ));
    assert_eq!(v["outcome"]["epochs"], 2, "{v}");
    for f in [
        "stack/stage-1/best.bpk",
        "stack/stage-2/best.bpk",
        "stack/stage-2/metrics.csv",
        "best.bpk",
    ] {
        assert!(d.join("run").join(f).is_file(), "{f} missing");
    }
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(
        config.contains("stacked = true") && config.contains("stack_epochs = 1"),
        "{config}"
    );
    let stage2 = std::fs::read_to_string(d.join("run/stack/stage-2/config.toml")).unwrap();
    assert!(stage2.contains("input = \"32x14x14\""), "{stage2}");

    let v = json(&run(
        &d.path,
        &[
            "probe",
            "run",
            "--data",
            &mnist_arg(),
            "--test",
            "100",
            "--budgets",
            "all",
            "--finetune",
            "--finetune-labels",
            "300",
            "--finetune-epochs",
            "5",
            "--json",
        ],
    ));
    let tuned = v["finetune"].as_array().unwrap();
    assert_eq!(tuned.len(), 2);
    assert_eq!(
        (tuned[0]["init"].as_str(), tuned[1]["init"].as_str()),
        (Some("pretrained"), Some("random"))
    );
    for t in tuned {
        assert_eq!(
            (t["labels"].as_u64(), t["test"].as_u64()),
            (Some(300), Some(100))
        );
        let acc = t["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{v}");
    }
    // five epochs on 300 digits beat chance (10%) by far, even from a 2-epoch pretraining
    assert!(tuned[0]["accuracy"].as_f64().unwrap() > 0.3, "{v}");
}
