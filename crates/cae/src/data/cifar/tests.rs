//! Tests for the CIFAR reader on synthetic batches (real CIFAR is not available offline).

use super::*;
use crate::data::fixture::TempDir;
use crate::data::{LoadOptions, load as load_source};

/// Pixel byte for record `r`, channel `c`, row `y`, column `x`.
fn px(r: usize, c: usize, y: usize, x: usize) -> u8 {
    ((c * 1024 + y * 32 + x) * 7 + r * 13) as u8
}

/// A batch of records with the given label bytes (1 for CIFAR-10, 2 for CIFAR-100).
fn batch(labels: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (r, l) in labels.iter().enumerate() {
        v.extend_from_slice(l);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    v.push(px(r, c, y, x));
                }
            }
        }
    }
    v
}

#[test]
fn cifar10_folder_round_trip_with_class_names() {
    let tmp = TempDir::new("cifar10");
    tmp.write("data_batch_1.bin", &batch(&[&[3], &[0], &[9]]));
    tmp.write("data_batch_2.bin", &batch(&[&[5]]));
    tmp.write("test_batch.bin", &batch(&[&[1], &[1]]));
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    tmp.write("batches.meta.txt", names.as_bytes());
    let set = load_source(&tmp.s(""), &LoadOptions::default()).unwrap();
    // Training batches only, in batch order; test_batch is left out.
    assert_eq!(set.len(), 4);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 3,
            height: 32,
            width: 32
        }
    );
    assert_eq!(set.labels, Some(vec![3, 0, 9, 5]));
    let class_names = set.class_names.as_ref().unwrap();
    assert_eq!(class_names.len(), 10);
    assert_eq!(class_names[3], "cat");
    for (r, (c, y, x)) in [(0, (0, 0, 0)), (2, (1, 5, 7)), (1, (2, 31, 31))] {
        let got = set.image(r)[c * 1024 + y * 32 + x];
        assert_eq!(
            got,
            f32::from(px(r, c, y, x)) / 255.0,
            "record {r} c{c} y{y} x{x}"
        );
    }
    // Record 0 of the second batch.
    assert_eq!(set.image(3)[1024 + 33], f32::from(px(0, 1, 1, 1)) / 255.0);
    assert!(
        set.origins[3].ends_with("data_batch_2.bin#0"),
        "{}",
        set.origins[3]
    );
    assert!(set.origins[0].ends_with("data_batch_1.bin#0"));

    // A test batch given directly.
    let t = load_source(&tmp.s("test_batch.bin"), &LoadOptions::default()).unwrap();
    assert_eq!(t.labels, Some(vec![1, 1]));
}

#[test]
fn cifar100_uses_fine_labels_and_detects_by_size() {
    let tmp = TempDir::new("cifar100");
    let p = tmp.write("train.bin", &batch(&[&[5, 42], &[19, 99]]));
    let set = load_files(&[p]).unwrap();
    assert_eq!(set.labels, Some(vec![42, 99]));
    assert!(set.class_names.is_none());
    assert_eq!(set.image(1)[5], f32::from(px(1, 0, 0, 5)) / 255.0);

    let names: String = (0..100).map(|i| format!("class{i}\n")).collect();
    tmp.write("fine_label_names.txt", names.as_bytes());
    let set = load_source(&tmp.s(""), &LoadOptions::default()).unwrap();
    assert_eq!(set.class_names.as_ref().unwrap()[42], "class42");

    // Unnamed files: the record size decides.
    let p = tmp.write("mine.bin", &batch(&[&[2, 70], &[3, 10], &[0, 0]]));
    assert_eq!(load_files(&[p]).unwrap().labels, Some(vec![70, 10, 0]));
    let p = tmp.write("other.bin", &batch(&[&[2], &[7]]));
    assert_eq!(load_files(&[p]).unwrap().labels, Some(vec![2, 7]));
}

#[test]
fn bad_sizes_and_labels_are_rejected() {
    let tmp = TempDir::new("cifar-bad");
    let mut b = batch(&[&[1], &[2]]);
    b.truncate(3073 + 100);
    let p = tmp.write("data_batch_1.bin", &b);
    let e = load_files(&[p]).unwrap_err().to_string();
    assert!(
        e.contains("3173 bytes is not a multiple of the CIFAR-10 record size (3073"),
        "{e}"
    );
    assert!(e.contains("data_batch_1.bin"), "{e}");

    let p = tmp.write("odd.bin", &[0u8; 5000]);
    let e = load_source(&p.display().to_string(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a multiple of the CIFAR-10 record size") && e.contains("CIFAR-100"),
        "{e}"
    );

    let p = tmp.write("sub/data_batch_1.bin", &batch(&[&[1], &[12]]));
    let e = load_files(&[p]).unwrap_err().to_string();
    assert!(e.contains("record 1 has label byte(s) [12]"), "{e}");

    let p = tmp.write("empty.bin", &[]);
    assert!(load_files(&[p]).unwrap_err().to_string().contains("empty"));
}

#[test]
fn folder_detection() {
    let tmp = TempDir::new("cifar-dir");
    assert_eq!(folder_batches(tmp.path()).unwrap(), None);
    tmp.write("test.bin", &batch(&[&[0, 1]]));
    assert_eq!(
        folder_batches(tmp.path()).unwrap(),
        Some(vec![tmp.path().join("test.bin")])
    );
    tmp.write("data_batch_10.bin", &batch(&[&[0]]));
    tmp.write("data_batch_2.bin", &batch(&[&[0]]));
    assert_eq!(
        folder_batches(tmp.path()).unwrap(),
        Some(vec![
            tmp.path().join("data_batch_2.bin"),
            tmp.path().join("data_batch_10.bin")
        ])
    );
}

#[test]
fn channel_and_resize_options_apply_to_cifar() {
    let tmp = TempDir::new("cifar-opts");
    tmp.write("data_batch_1.bin", &batch(&[&[1], &[2], &[3]]));
    let opts = LoadOptions {
        channels: Some(1),
        resize: Some((16, 8)),
        classes: Some(vec![2, 3]),
        limit: Some(1),
        ..Default::default()
    };
    let set = load_source(&tmp.s(""), &opts).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.labels, Some(vec![2]));
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 16,
            width: 8
        }
    );
    assert_eq!(set.pixels.len(), 128);
    assert!(set.origins[0].ends_with("#1"));
}
