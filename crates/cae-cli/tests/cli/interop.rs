//! PyTorch interop end to end: `cae export` → `cae import` gives a run with the same outputs, a
//! PyTorch checkpoint (committed fixture made with torch) imports with PyTorch's outputs, and
//! bad files and arguments fail with one clear line.

use crate::util::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cae/tests/fixtures/interop")
        .join(name)
        .display()
        .to_string()
}

/// The float32 payload of a .npy file (numpy's little-endian, C-order layout).
fn npy_f32(path: PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(&path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A safetensors file of float32 tensors, written by hand (independent of the reader).
fn safetensors(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(vec![0u8; offset]);
    out
}

fn train_small(d: &Dir) {
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pytorch-small",
            "--data",
            &mnist_arg(),
            "--limit",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            "run",
        ],
    ));
}

#[test]
fn export_then_import_gives_the_same_outputs() {
    let d = Dir::new("interop-roundtrip");
    train_small(&d);
    let v = json(&run(
        &d.path,
        &["export", "run", "-o", "model.safetensors", "--json"],
    ));
    assert_eq!(v["tensors"], 8);
    assert_eq!(v["params"], 2633);
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&bytes[8..8 + 4096.min(bytes.len() - 8)]);
    for needle in [
        "\"0.weight\"",
        "\"5.bias\"",
        "cae.arch",
        "cae.torch",
        "nn.Sequential",
    ] {
        assert!(header.contains(needle), "header lacks {needle}");
    }

    // No --arch: the spec comes from the file's metadata.
    let v = json(&run(
        &d.path,
        &["import", "model.safetensors", "-o", "back", "--json"],
    ));
    assert_eq!(
        (v["format"].as_str(), v["arch"].as_str()),
        (Some("safetensors"), Some("pytorch-small"))
    );
    let imported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("back/imported.json")).unwrap()).unwrap();
    assert_eq!(imported["tensors"], 8);

    for r in ["run", "back"] {
        ok(&run(
            &d.path,
            &[
                "reconstruct",
                r,
                "--data",
                &mnist_arg(),
                "-n",
                "8",
                "-o",
                &format!("{r}.png"),
                "--npy",
                &format!("{r}.npy"),
            ],
        ));
        ok(&run(
            &d.path,
            &[
                "encode",
                r,
                "--data",
                &mnist_arg(),
                "--limit",
                "32",
                "-o",
                &format!("{r}-codes.npy"),
            ],
        ));
    }
    let raw = npy_f32(d.join("run.npy"));
    assert_eq!(raw.len(), 8 * 28 * 28);
    assert_eq!(raw, npy_f32(d.join("back.npy")), "reconstructions differ");
    assert_eq!(
        npy_f32(d.join("run-codes.npy")),
        npy_f32(d.join("back-codes.npy")),
        "codes differ"
    );
    let mse = |r: &str| {
        json(&run(
            &d.path,
            &["eval", r, "--data", &mnist_arg(), "--limit", "64", "--json"],
        ))["mse"]
            .clone()
    };
    assert_eq!(mse("run"), mse("back"));

    // Commands that fall back to the run's own data say an imported run has none.
    fails_with(
        &run(
            &d.path,
            &["anomaly", "threshold", "back", "--percentile", "99"],
        ),
        "the run records no data source (imported weights); pass --data SRC",
    );

    // The exported file round-trips again, and --weights last works.
    ok(&run(
        &d.path,
        &[
            "export",
            "back",
            "-o",
            "again.safetensors",
            "--weights",
            "last",
        ],
    ));
    fails_with(
        &run(&d.path, &["import", "again.safetensors", "-o", "back"]),
        "already holds a run",
    );
}

#[test]
fn a_pytorch_checkpoint_imports_with_pytorchs_outputs() {
    let d = Dir::new("interop-pt");
    let spec = [
        "--arch", "oneclass", "--param", "base=4", "--param", "latent=4",
    ];
    for (file, out) in [
        ("oneclass-tiny.pt", "pt"),
        ("oneclass-tiny.safetensors", "st"),
    ] {
        let mut args = vec!["import".to_string(), fixture(file)];
        args.extend(spec.iter().map(|s| s.to_string()));
        args.extend(["-o".into(), out.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let printed = ok(&run(&d.path, &args));
        assert!(
            printed.contains("imported 14 tensors (4345 parameters"),
            "{printed}"
        );
        ok(&run(
            &d.path,
            &[
                "reconstruct",
                out,
                "--data",
                &fixture("input.npy"),
                "-n",
                "2",
                "-o",
                &format!("{out}.png"),
                "--npy",
                &format!("{out}.npy"),
            ],
        ));
        let got = npy_f32(d.join(&format!("{out}.npy")));
        let want = npy_f32(PathBuf::from(fixture("output.npy")));
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            got.len() == want.len() && diff <= 1e-5,
            "{file}: max abs difference {diff}"
        );
    }
}

#[test]
fn arch_torch_prints_the_sequential() {
    let d = Dir::new("interop-arch");
    let out = ok(&run(&d.path, &["arch", "galeone", "--torch"]));
    assert!(out.starts_with("nn.Sequential(\n"), "{out}");
    assert!(
        out.contains("nn.Conv2d(1, 32, kernel_size=(7, 7), stride=(1, 1), padding=(6, 6)"),
        "{out}"
    );
    assert!(out.contains("# 2: decoder layer 1 (conv)"), "{out}");
}

#[test]
fn bad_exports_fail_cleanly() {
    let d = Dir::new("interop-bad-export");
    fails_with(
        &run(&d.path, &["export", "nowhere", "-o", "m.safetensors"]),
        "not a cae run directory",
    );
    train_small(&d);
    fails_with(
        &run(&d.path, &["export", "run", "-o", "m.pt"]),
        "cae writes .safetensors only",
    );
}

#[test]
fn export_to_an_extension_it_does_not_write_is_an_error_not_safetensors_bytes() {
    let d = Dir::new("interop-export-extension");
    train_small(&d);
    let best = std::fs::read(d.join("run/best.bpk")).unwrap();
    fails_with(
        &run(&d.path, &["export", "run", "-o", "model.xyz"]),
        "model.xyz: unknown output format 'xyz'; cae export writes PyTorch .safetensors (-o FILE.safetensors) or ONNX (-o FILE.onnx)",
    );
    assert!(!d.join("model.xyz").exists());
    // Nor over the run's own weights.
    fails_with(
        &run(&d.path, &["export", "run", "-o", "run/best.bpk"]),
        "is best.bpk of the run",
    );
    fails_with(
        &run(&d.path, &["export", "run", "-o", "best.bpk"]),
        "unknown output format 'bpk'",
    );
    assert_eq!(std::fs::read(d.join("run/best.bpk")).unwrap(), best);
    fails_with(
        &run(&d.path, &["export", "run", "-o", "model"]),
        "unknown output format ''",
    );
    fails_with(
        &run(
            &d.path,
            &["export", "run", "-o", "model.onnx", "--part", "decoder"],
        ),
        "invalid value 'decoder' for '--part <PART>'",
    );
    assert!(!d.join("model.onnx").exists());
}

/// Whether `bytes` hold `needle` (names and metadata are stored as plain strings in protobuf).
fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn export_to_onnx_writes_the_model_and_with_part_encoder_the_encoder() {
    let d = Dir::new("interop-onnx");
    train_small(&d);
    let v = json(&run(
        &d.path,
        &["export", "run", "-o", "model.onnx", "--json"],
    ));
    assert_eq!(v["format"], "onnx");
    assert_eq!(v["part"], "model");
    assert_eq!(v["opset"], 17);
    // Conv, Relu, Conv | ConvTranspose, Relu, ConvTranspose, Sigmoid; a weight and a bias each.
    assert_eq!(v["nodes"], 7);
    assert_eq!(v["initializers"], 8);
    assert_eq!(v["values"], 2633);
    let bytes = std::fs::read(d.join("model.onnx")).unwrap();
    for needle in [
        "ConvTranspose",
        "encoder.1.weight",
        "decoder.2.bias",
        "input",
        "output",
        "cae.arch",
        "pytorch-small",
    ] {
        assert!(holds(&bytes, needle), "model.onnx lacks {needle:?}");
    }

    let printed = ok(&run(
        &d.path,
        &["export", "run", "--part", "encoder", "-o", "encoder.onnx"],
    ));
    assert!(
        printed.contains("wrote encoder.onnx (ONNX opset 17, 3 nodes, 4 initializers; input 'input' [batch, 1, 28, 28] float32, output 'output': the code)"),
        "{printed}"
    );
    let encoder = std::fs::read(d.join("encoder.onnx")).unwrap();
    assert!(holds(&encoder, "encoder.2.bias"));
    assert!(!holds(&encoder, "decoder.1.weight"));
    assert!(encoder.len() < bytes.len());

    // An existing file is kept unless --force.
    fails_with(
        &run(&d.path, &["export", "run", "-o", "model.onnx"]),
        "model.onnx",
    );
    ok(&run(
        &d.path,
        &["export", "run", "-o", "model.onnx", "--force"],
    ));
}

#[test]
fn export_part_encoder_to_safetensors_keeps_the_encoders_tensors() {
    let d = Dir::new("interop-encoder-safetensors");
    train_small(&d);
    let v = json(&run(
        &d.path,
        &[
            "export",
            "run",
            "--part",
            "encoder",
            "-o",
            "enc.safetensors",
            "--json",
        ],
    ));
    assert_eq!(v["part"], "encoder");
    // 0.weight, 0.bias, 2.weight, 2.bias: the first three modules (conv, relu, conv).
    assert_eq!(v["tensors"], 4);
    assert_eq!(v["modules"], 3);
    assert_eq!(v["params"], 160 + 1160);
    let bytes = std::fs::read(d.join("enc.safetensors")).unwrap();
    assert!(holds(&bytes, "\"2.bias\""));
    assert!(!holds(&bytes, "\"3.weight\""));
    assert!(holds(&bytes, "cae.part"));
}

#[test]
fn bad_imports_fail_cleanly() {
    let d = Dir::new("interop-bad-import");
    let garbage = d.write("garbage.safetensors", b"this is not a tensor file at all");
    fails_with(
        &run(
            &d.path,
            &[
                "import",
                &garbage.display().to_string(),
                "--arch",
                "pytorch-small",
                "-o",
                "r",
            ],
        ),
        "garbage.safetensors: not a valid safetensors file",
    );
    let pt = std::fs::read(fixture("oneclass-tiny.pt")).unwrap();
    let cut = d.write("cut.pt", &pt[..pt.len() / 2]);
    fails_with(
        &run(
            &d.path,
            &[
                "import",
                &cut.display().to_string(),
                "--arch",
                "oneclass",
                "-o",
                "r",
            ],
        ),
        "cut.pt: not a valid PyTorch checkpoint",
    );
    let empty = d.write("empty.safetensors", b"");
    fails_with(
        &run(
            &d.path,
            &[
                "import",
                &empty.display().to_string(),
                "--arch",
                "galeone",
                "-o",
                "r",
            ],
        ),
        "the file is empty",
    );
    fails_with(
        &run(
            &d.path,
            &["import", "missing.pt", "--arch", "galeone", "-o", "r"],
        ),
        "missing.pt: cannot read",
    );

    // pytorch-small without its last bias.
    let partial = safetensors(&[
        ("0.weight", vec![16, 1, 3, 3]),
        ("0.bias", vec![16]),
        ("2.weight", vec![8, 16, 3, 3]),
        ("2.bias", vec![8]),
        ("3.weight", vec![8, 16, 3, 3]),
        ("3.bias", vec![16]),
        ("5.weight", vec![16, 1, 3, 3]),
    ]);
    let partial = d.write("partial.safetensors", &partial);
    fails_with(
        &run(
            &d.path,
            &[
                "import",
                &partial.display().to_string(),
                "--arch",
                "pytorch-small",
                "-o",
                "r",
            ],
        ),
        "missing 1 key: '5.bias' [1]",
    );
    // The fixture's weights for a wider spec: the first mismatch is named with both shapes.
    fails_with(
        &run(
            &d.path,
            &[
                "import",
                &fixture("oneclass-tiny.pt"),
                "--arch",
                "oneclass",
                "--param",
                "latent=4",
                "-o",
                "r",
            ],
        ),
        "'0.weight' (encoder layer 1 (conv)) has shape [4, 1, 3, 3], expected [32, 1, 3, 3]",
    );
    // A PyTorch checkpoint carries no spec.
    fails_with(
        &run(
            &d.path,
            &["import", &fixture("oneclass-tiny.pt"), "-o", "r"],
        ),
        "no architecture: pass --arch",
    );
    assert!(!d.join("r").exists(), "a failed import left a directory");
}
