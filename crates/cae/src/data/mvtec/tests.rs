//! Tests for the MVTec AD layout: detection, train images, test images with masks, and every
//! way a layout can be broken.

use super::*;
use crate::data::fixture::TempDir;
use crate::data::load as load_source;
use image::{GrayImage, Luma};

fn png(tmp: &TempDir, rel: &str, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    let p = tmp.path().join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    GrayImage::from_fn(w, h, |x, y| Luma([f(x, y)]))
        .save(&p)
        .unwrap();
}

/// A valid layout: 3 train images, 2 good and 2 "hole" test images with masks, 8x6 pixels.
fn layout(tmp: &TempDir) {
    for i in 0..3 {
        png(tmp, &format!("train/good/{i:03}.png"), 8, 6, |_, _| 100);
    }
    for i in 0..2 {
        png(tmp, &format!("test/good/{i:03}.png"), 8, 6, |_, _| 100);
        png(tmp, &format!("test/hole/{i:03}.png"), 8, 6, |x, _| {
            if x < 2 { 0 } else { 100 }
        });
        png(
            tmp,
            &format!("ground_truth/hole/{i:03}_mask.png"),
            8,
            6,
            |x, _| {
                if x < 2 { 255 } else { 0 }
            },
        );
    }
}

#[test]
fn reads_train_and_test_with_masks() {
    let tmp = TempDir::new("mvtec-ok");
    layout(&tmp);
    assert!(is_layout(tmp.path()));
    // As a plain source the root means its training images only.
    let train = load_source(&tmp.s(""), &LoadOptions::default()).unwrap();
    assert_eq!(train.len(), 3);
    assert!(train.origins.iter().all(|o| o.contains("train/good")));
    let t = load_test(tmp.path(), &LoadOptions::default()).unwrap();
    assert_eq!(t.images.len(), 4);
    assert_eq!(t.images.labels, Some(vec![0, 0, 1, 1]));
    assert_eq!(
        t.images.class_names,
        Some(vec!["good".to_string(), "hole".to_string()])
    );
    assert!(t.masks[0].iter().all(|&m| m == 0));
    let defect = &t.masks[2];
    assert_eq!(defect.len(), 48);
    assert_eq!(defect.iter().filter(|&&m| m == 1).count(), 12);
    assert_eq!((defect[0], defect[1], defect[2]), (1, 1, 0));
}

#[test]
fn resizes_masks_with_their_images() {
    let tmp = TempDir::new("mvtec-resize");
    layout(&tmp);
    let opts = LoadOptions {
        resize: Some((12, 16)),
        ..LoadOptions::default()
    };
    let t = load_test(tmp.path(), &opts).unwrap();
    assert_eq!((t.images.shape.height, t.images.shape.width), (12, 16));
    let m = &t.masks[3];
    assert_eq!(m.len(), 192);
    // The defect is the left quarter: columns 0..4 of 16.
    assert!((0..12).all(|y| m[y * 16] == 1 && m[y * 16 + 10] == 0));
}

#[test]
fn a_missing_mask_is_named() {
    let tmp = TempDir::new("mvtec-nomask");
    layout(&tmp);
    fs::remove_file(tmp.path().join("ground_truth/hole/001_mask.png")).unwrap();
    let e = load_test(tmp.path(), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MvtecError::MaskMissing { .. }), "{msg}");
    assert!(msg.contains("ground_truth/hole/001_mask.png"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn a_mask_of_the_wrong_size_is_named() {
    let tmp = TempDir::new("mvtec-masksize");
    layout(&tmp);
    png(&tmp, "ground_truth/hole/000_mask.png", 4, 6, |_, _| 255);
    let e = load_test(tmp.path(), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("mask is 6x4 (HxW)") && msg.contains("is 6x8"),
        "{msg}"
    );
}

#[test]
fn no_test_folder_or_no_test_images() {
    let tmp = TempDir::new("mvtec-notest");
    png(&tmp, "train/good/0.png", 4, 4, |_, _| 1);
    let e = load_test(tmp.path(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, MvtecError::MissingTest { .. }), "{e}");
    fs::create_dir_all(tmp.path().join("test/good")).unwrap();
    fs::create_dir_all(tmp.path().join("test/crack")).unwrap();
    let e = load_test(tmp.path(), &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("holds no images"), "{e}");
    // An empty train/good is the folder loader's error, naming the folder.
    let empty = TempDir::new("mvtec-notrain");
    fs::create_dir_all(empty.path().join("train/good")).unwrap();
    let e = load_source(&empty.s(""), &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("train/good"), "{e}");
}

#[test]
fn test_folders_of_different_sizes_need_a_resize() {
    let tmp = TempDir::new("mvtec-sizes");
    layout(&tmp);
    png(&tmp, "test/good/000.png", 8, 6, |_, _| 1);
    png(&tmp, "test/good/001.png", 8, 6, |_, _| 1);
    png(&tmp, "test/hole/000.png", 9, 6, |_, _| 1);
    png(&tmp, "test/hole/001.png", 9, 6, |_, _| 1);
    png(&tmp, "ground_truth/hole/000_mask.png", 9, 6, |_, _| 0);
    png(&tmp, "ground_truth/hole/001_mask.png", 9, 6, |_, _| 0);
    let e = load_test(tmp.path(), &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("all images must share one size"),
        "{e}"
    );
}
