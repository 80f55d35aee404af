//! What each fuzz target does with its bytes. Kept apart from `fuzz_targets/` so that the
//! regression test `crates/cae/tests/fuzz_regressions.rs` runs exactly this code on the saved
//! inputs in `fuzz/regressions/<target>/` during the normal `cargo test`.
//!
//! Every function must return without panicking for ANY input; when a parser accepts the
//! bytes, the set it returns must be consistent (one origin per image, pixels in [0, 1]).

use cae::data::{self, ImageSet, ImageShape, LoadOptions, decode};

/// An IDX images file, raw or gzip.
pub fn idx(bytes: &[u8]) {
    check(decode::idx(bytes, "fuzz-images-idx3-ubyte"));
}

/// A `.npy` image array.
pub fn npy(bytes: &[u8]) {
    check(decode::npy(bytes, "fuzz.npy"));
}

/// A CIFAR batch; the first byte picks the file name (which can fix the variant).
pub fn cifar(bytes: &[u8]) {
    let Some((&pick, rest)) = bytes.split_first() else {
        return;
    };
    let name = ["data_batch_1.bin", "train.bin", "batch.bin"][usize::from(pick % 3)];
    check(decode::cifar(rest, name));
}

/// One or two images through the folder loader's decoder; the first byte picks the options
/// (channels none/1/3, resize to 8x8 or not, the image once or twice).
pub fn image(bytes: &[u8]) {
    let Some((&pick, rest)) = bytes.split_first() else {
        return;
    };
    let opts = LoadOptions {
        channels: [None, Some(1), Some(3), None][usize::from(pick & 3)],
        resize: (pick & 4 != 0).then_some((8, 8)),
        ..LoadOptions::default()
    };
    let images: &[(&str, &[u8])] = if pick & 8 != 0 {
        &[("a.png", rest), ("b.jpg", rest)]
    } else {
        &[("a.png", rest)]
    };
    check(decode::images(images, &opts));
}

/// Text configs: an architecture spec (as given, and for two input shapes), a run's
/// `config.toml`, and every line through the small value parsers the CLI and configs use.
pub fn config(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for input in [None, Some((1, 28, 28)), Some((3, 8, 8))] {
        let input = input.map(|(channels, height, width)| ImageShape {
            channels,
            height,
            width,
        });
        if let Ok(spec) = cae::spec::ArchSpec::resolve_text("fuzz", &text, &[], input) {
            let _ = spec.summary();
            // What a run directory stores must read back as the same spec.
            let again = cae::spec::ArchSpec::resolve_text(
                "fuzz",
                &spec.spec.to_toml(),
                &[],
                Some(spec.input),
            );
            assert!(again.is_ok(), "stored spec does not resolve: {again:?}");
        }
    }
    if let Ok(config) = toml::from_str::<cae::run::RunConfig>(&text) {
        let _ = config.train.check();
        let _ = config.data.load_options(0);
        if let Ok(input) = config.input_shape() {
            let arch = toml::to_string(&config.arch).unwrap_or_default();
            let _ = cae::spec::ArchSpec::resolve_text("fuzz", &arch, &[], Some(input));
        }
    }
    for line in text.lines() {
        let _ = ImageShape::parse(line);
        let _ = cae::run::config::parse_hw(line);
        let _ = line.parse::<cae::run::LossKind>();
        let _ = line.parse::<cae::noise::NoiseSpec>();
        let _ = line.parse::<cae::device::DeviceKind>();
        let _ = cae::spec::parse_param(line);
    }
}

/// On success, the set must be self-consistent.
fn check(result: Result<ImageSet, data::DataError>) {
    let Ok(set) = result else { return };
    assert_eq!(set.pixels.len(), set.len() * set.shape.len());
    if let Some(labels) = &set.labels {
        assert_eq!(labels.len(), set.len());
    }
    assert!(set.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
}
