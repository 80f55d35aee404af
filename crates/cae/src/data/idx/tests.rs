//! Tests for the IDX reader: the committed MNIST fixture, raw files, and every header lie.

use super::*;
use crate::data::fixture::{
    TempDir, fixture_images, fixture_labels, gunzip, gzip, idx_bytes, shared_data,
};
use crate::data::{LoadOptions, load as load_source};

#[test]
fn reads_the_gzip_fixture_with_labels() {
    let set = load(&fixture_images()).unwrap();
    assert_eq!(set.len(), 500);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 28,
            width: 28
        }
    );
    assert_eq!(set.pixels.len(), 500 * 784);
    assert!(set.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    let labels = set.labels.as_ref().unwrap();
    assert_eq!(labels.len(), 500);
    assert_eq!(&labels[..10], &[0, 3, 0, 2, 9, 4, 8, 6, 5, 0]);
    // 59 sevens and 60 nines among the first 500 (see the fixture README).
    assert_eq!(labels.iter().filter(|&&l| l == 7).count(), 59);
    assert_eq!(labels.iter().filter(|&&l| l == 9).count(), 60);
    // First digit: raw byte sum 27333, max 255.
    let sum: f32 = set.image(0).iter().sum();
    assert!((sum - 27333.0 / 255.0).abs() < 1e-2, "{sum}");
    assert_eq!(set.image(0).iter().cloned().fold(0.0, f32::max), 1.0);
    assert_eq!(set.image(0)[0], 0.0, "MNIST corners are black");
    assert!(set.origins[3].ends_with("mnist500-images-idx3-ubyte.gz#3"));
    assert!(set.class_names.is_none());
}

#[test]
fn raw_idx_matches_gzip_and_finds_dot_named_labels() {
    let tmp = TempDir::new("idx-raw");
    let images = gunzip(&std::fs::read(fixture_images()).unwrap());
    let labels = gunzip(&std::fs::read(fixture_labels()).unwrap());
    let p = tmp.write("t-images.idx3-ubyte", &images);
    tmp.write("t-labels.idx1-ubyte", &labels);
    let raw = load(&p).unwrap();
    let gz = load(&fixture_images()).unwrap();
    assert_eq!(raw.pixels, gz.pixels);
    assert_eq!(raw.labels, gz.labels);
    // Through `load` too: detected by content, not extension.
    let via = load_source(&tmp.s("t-images.idx3-ubyte"), &LoadOptions::default()).unwrap();
    assert_eq!(via.len(), 500);
}

#[test]
fn missing_labels_file_gives_no_labels() {
    let tmp = TempDir::new("idx-nolabels");
    let p = tmp.write(
        "x-images-idx3-ubyte",
        &idx_bytes(
            0x803,
            &[2, 2, 3],
            &[0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6],
        ),
    );
    let set = load(&p).unwrap();
    assert!(set.labels.is_none());
    assert_eq!(set.shape.height, 2);
    assert_eq!(set.shape.width, 3);
    assert_eq!(&set.pixels[..6], &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
}

#[test]
fn truncated_files_are_reported() {
    let tmp = TempDir::new("idx-trunc");
    let raw = gunzip(&std::fs::read(fixture_images()).unwrap());
    let p = tmp.write("cut-images-idx3-ubyte", &raw[..16 + 1200]);
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated IDX file"), "{e}");
    assert!(
        e.contains("500 images of 28x28 (392000 bytes)") && e.contains("only 1200 bytes"),
        "{e}"
    );
    assert!(e.contains("cut-images-idx3-ubyte"), "{e}");

    // A gzip file cut in half.
    let gz = std::fs::read(fixture_images()).unwrap();
    let p = tmp.write("half-images-idx3-ubyte.gz", &gz[..gz.len() / 2]);
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    // Ends inside the header.
    let p = tmp.write("hdr-images-idx3-ubyte", &[0, 0, 8, 3, 0, 0]);
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("header"), "{e}");
}

#[test]
fn wrong_magic_and_unsupported_types_are_rejected() {
    let tmp = TempDir::new("idx-magic");
    let p = tmp.write(
        "bad-images-idx3-ubyte",
        &idx_bytes(0x1234_0803, &[1, 1, 1], &[0]),
    );
    let e = load(&p).unwrap_err();
    assert!(matches!(e, DataError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("bad magic number 0x12340803"), "{e}");
    // Gzipped garbage through `load` reaches the IDX reader and names the problem.
    let p = tmp.write("junk.gz", &gzip(b"hello world, not an idx file"));
    let e = load_source(&p.display().to_string(), &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("not a valid IDX file: bad magic"),
        "{e}"
    );
    // Float IDX (type 0x0D) is valid IDX but unsupported.
    let p = tmp.write(
        "f-images-idx3-ubyte",
        &idx_bytes(0x0D03, &[1, 1, 1], &[0, 0, 0, 0]),
    );
    let e = load(&p).unwrap_err();
    assert!(matches!(e, DataError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("32-bit float"), "{e}");
    // A labels file passed as the images file.
    let e = load(&fixture_labels()).unwrap_err().to_string();
    assert!(e.contains("labels") && e.contains("images file"), "{e}");
}

#[test]
fn huge_declared_dims_fail_without_allocating() {
    let tmp = TempDir::new("idx-huge");
    let header = idx_bytes(0x803, &[1_000_000_000, 28, 28], &[0u8; 100]);
    let p = tmp.write("huge-images-idx3-ubyte", &header);
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.contains("truncated") && e.contains("1000000000 images of 28x28"),
        "{e}"
    );
    // Gzip: rejected from the compressed size alone, before decompressing anything.
    let p = tmp.write("huge-images-idx3-ubyte.gz", &gzip(&header));
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("cannot hold"), "{e}");
    // Header claims 10x the (incompressible) data present; reading stops at the data.
    let mut x = 12345u32;
    let noise: Vec<u8> = (0..78_400)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect();
    let bomb = idx_bytes(0x803, &[1000, 28, 28], &noise);
    let p = tmp.write("bomb-images-idx3-ubyte.gz", &gzip(&bomb));
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.contains("only 78400 bytes follow (after decompression)"),
        "{e}"
    );
    // Zero images.
    let p = tmp.write(
        "zero-images-idx3-ubyte",
        &idx_bytes(0x803, &[0, 28, 28], &[]),
    );
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("no data"), "{e}");
}

#[test]
fn extra_data_is_rejected() {
    let tmp = TempDir::new("idx-extra");
    let p = tmp.write(
        "x-images-idx3-ubyte",
        &idx_bytes(0x803, &[1, 2, 2], &[0, 0, 0, 0, 9]),
    );
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("more data follows"), "{e}");
}

#[test]
fn label_count_mismatch_is_an_error() {
    let tmp = TempDir::new("idx-labels");
    let p = tmp.write(
        "m-images-idx3-ubyte.gz",
        &gzip(&idx_bytes(0x803, &[3, 2, 2], &[0; 12])),
    );
    tmp.write(
        "m-labels-idx1-ubyte.gz",
        &gzip(&idx_bytes(0x801, &[4], &[1, 2, 3, 4])),
    );
    let e = load(&p).unwrap_err();
    match &e {
        DataError::LabelCount { images, labels, .. } => assert_eq!((*images, *labels), (3, 4)),
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("m-labels-idx1-ubyte.gz"), "{e}");
    // Matching count: labels read.
    tmp.write(
        "m-labels-idx1-ubyte.gz",
        &gzip(&idx_bytes(0x801, &[3], &[7, 8, 9])),
    );
    assert_eq!(load(&p).unwrap().labels, Some(vec![7, 8, 9]));
}

#[test]
fn labels_path_derivation() {
    let tmp = TempDir::new("idx-names");
    tmp.write("train-labels-idx1-ubyte", b"x");
    tmp.write("t10k-labels-idx1-ubyte.gz", b"x");
    let d = tmp.path();
    assert_eq!(
        labels_path_for(&d.join("train-images-idx3-ubyte.gz")),
        Some(d.join("train-labels-idx1-ubyte"))
    );
    assert_eq!(
        labels_path_for(&d.join("t10k-images-idx3-ubyte")),
        Some(d.join("t10k-labels-idx1-ubyte.gz"))
    );
    assert_eq!(labels_path_for(&d.join("digits.gz")), None);
}

#[test]
fn shared_mnist4k_when_present() {
    let Some(shared) = shared_data("shared_mnist4k_when_present") else {
        return;
    };
    let set = load(&shared.join("mnist/mnist4k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(set.len(), 4000);
    let labels = set.labels.as_ref().unwrap();
    for k in 0..10 {
        assert_eq!(labels.iter().filter(|&&l| l == k).count(), 400);
    }
    let small = load(&fixture_images()).unwrap();
    assert_eq!(&set.pixels[..500 * 784], &small.pixels[..]);
}
