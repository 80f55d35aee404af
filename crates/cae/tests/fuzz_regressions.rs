//! Every input saved in `fuzz/regressions/<target>/` — the crashes the fuzzers found (minimised)
//! and a few interesting inputs from their corpora — goes through the same harness the fuzz
//! targets run (`fuzz/harness.rs`, included below), so the normal `cargo test` keeps them fixed
//! without cargo-fuzz or a nightly toolchain.

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

/// Feeds every file of `fuzz/regressions/<target>/` to `harness`; fails naming the files that
/// panicked.
fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no inputs", dir.display());
    let panicked: Vec<String> = files
        .iter()
        .filter(|path| {
            let bytes = std::fs::read(path).expect("read input");
            std::panic::catch_unwind(|| harness(&bytes)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(panicked.is_empty(), "inputs that panic: {panicked:#?}");
}

#[test]
fn idx_inputs_do_not_panic() {
    replay("idx", harness::idx);
}

#[test]
fn npy_inputs_do_not_panic() {
    replay("npy", harness::npy);
}

#[test]
fn cifar_inputs_do_not_panic() {
    replay("cifar", harness::cifar);
}

#[test]
fn image_inputs_do_not_panic() {
    replay("image", harness::image);
}

#[test]
fn config_inputs_do_not_panic() {
    replay("config", harness::config);
}
