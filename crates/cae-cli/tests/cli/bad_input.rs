//! Bad input of every kind gives one clear error line and a non-zero exit, never a panic.

use crate::util::*;

#[test]
fn truncated_idx_file() {
    let d = Dir::new("bad-idx");
    let raw = {
        use std::io::Read;
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(mnist_fixture()).unwrap())
            .read_to_end(&mut s)
            .unwrap();
        s
    };
    d.write("cut-images-idx3-ubyte", &raw[..raw.len() / 3]);
    let o = run(
        &d.path,
        &["train", "--data", "cut-images-idx3-ubyte", "--out", "run"],
    );
    fails_with(&o, "truncated");
    assert!(
        !d.join("run").exists(),
        "a failed start must not leave a run directory"
    );
}

#[test]
fn empty_folder() {
    let d = Dir::new("bad-empty");
    std::fs::create_dir_all(d.join("imgs")).unwrap();
    fails_with(
        &run(&d.path, &["train", "--data", "imgs", "--out", "run"]),
        "no images found",
    );
}

#[test]
fn png_that_is_not_a_png() {
    let d = Dir::new("bad-png");
    d.write("imgs/a.png", b"this is not an image");
    fails_with(
        &run(&d.path, &["train", "--data", "imgs", "--out", "run"]),
        "a.png",
    );
}

#[test]
fn unknown_option_and_unknown_values() {
    let d = Dir::new("bad-opt");
    let o = run(&d.path, &["train", "--epohcs", "3"]);
    fails_with(&o, "unexpected argument '--epohcs'");
    assert_eq!(o.status.code(), Some(2));
    fails_with(
        &run(
            &d.path,
            &["train", "--data", &mnist_arg(), "--loss", "ssim2"],
        ),
        "unknown loss 'ssim2'",
    );
    fails_with(
        &run(
            &d.path,
            &["train", "--data", &mnist_arg(), "--device", "tpu"],
        ),
        "invalid value 'tpu' for '--device <DEVICE>' [possible values: flex, wgpu, cuda]",
    );
    // A mistyped flag keeps clap's suggestion on the one error line.
    fails_with(
        &run(&d.path, &["train", "--data", &mnist_arg(), "--epoch", "3"]),
        "a similar argument exists: '--epochs'",
    );
    // One parser for --device in every command (a clap value enum, not a string per command).
    fails_with(
        &run(&d.path, &["eval", "run", "--device", "gpu"]),
        "[possible values: flex, wgpu, cuda]",
    );
    fails_with(
        &run(
            &d.path,
            &["train", "--data", &mnist_arg(), "--resize", "big"],
        ),
        "expected HxW",
    );
}

#[test]
fn gpu_device_not_compiled_in() {
    let d = Dir::new("bad-device");
    if cfg!(feature = "wgpu") {
        return;
    }
    let o = run(
        &d.path,
        &[
            "train",
            "--data",
            &mnist_arg(),
            "--limit",
            "32",
            "--device",
            "wgpu",
            "--out",
            "run",
        ],
    );
    fails_with(&o, "not compiled into this binary");
}

#[test]
fn eval_on_missing_run_and_wrong_shape() {
    let d = Dir::new("bad-eval");
    fails_with(
        &run(&d.path, &["eval", "nowhere", "--data", &mnist_arg()]),
        "not a cae run directory",
    );
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let o = run(&d.path, &["eval", "run", "--data", "builtin:shapes:10x32"]);
    fails_with(&o, "images are 1x32x32 but the model takes 1x28x28");
}

#[test]
fn npy_with_nan() {
    let d = Dir::new("bad-npy");
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4, 4), }";
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    for i in 0..32 {
        let v: f32 = if i == 5 { f32::NAN } else { 0.5 };
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    d.write("x.npy", &bytes);
    fails_with(
        &run(
            &d.path,
            &[
                "train", "--data", "x.npy", "--arch", "galeone", "--out", "run",
            ],
        ),
        "x.npy",
    );
}
