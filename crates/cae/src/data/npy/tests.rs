//! Tests for the `.npy` reader: dtypes, shapes, labels and every way a file can be wrong.

use super::*;
use crate::data::fixture::{TempDir, f32_le, f64_le, npy_bytes, npy_raw, shared_data};
use crate::data::{LoadOptions, load as load_source};

#[test]
fn u1_three_dims() {
    let tmp = TempDir::new("npy-u1");
    let data: Vec<u8> = (0..24).map(|i| i * 10).collect();
    let p = tmp.write("a.npy", &npy_bytes("|u1", &[2, 3, 4], false, &data));
    let set = load(&p).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 3,
            width: 4
        }
    );
    assert_eq!(set.image(1)[0], 120.0 / 255.0);
    assert_eq!(set.pixels[23], 230.0 / 255.0);
    assert!(set.labels.is_none());
    assert!(set.origins[1].ends_with("a.npy#1"));
}

#[test]
fn f8_four_dims_and_f4_three_dims() {
    let tmp = TempDir::new("npy-float");
    let values: Vec<f64> = (0..24).map(|i| f64::from(i) / 23.0).collect();
    let p = tmp.write(
        "c.npy",
        &npy_bytes("<f8", &[2, 3, 2, 2], false, &f64_le(&values)),
    );
    let set = load(&p).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 3,
            height: 2,
            width: 2
        }
    );
    for (got, want) in set.pixels.iter().zip(&values) {
        assert!((f64::from(*got) - want).abs() < 1e-6);
    }

    let v32: Vec<f32> = vec![0.0, 0.25, 0.5, 1.0, 0.75, 0.125];
    let p = tmp.write("d.npy", &npy_bytes("<f4", &[3, 1, 2], false, &f32_le(&v32)));
    let set = load(&p).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.pixels, v32);

    // Big-endian float32 and float64, and a version-2.0 header.
    let be: Vec<u8> = v32.iter().flat_map(|v| v.to_be_bytes()).collect();
    let p = tmp.write("e.npy", &npy_bytes(">f4", &[1, 2, 3], false, &be));
    assert_eq!(load(&p).unwrap().pixels, v32);
    let be8: Vec<u8> = v32
        .iter()
        .flat_map(|v| f64::from(*v).to_be_bytes())
        .collect();
    let p = tmp.write("f.npy", &npy_bytes(">f8", &[1, 1, 2, 3], false, &be8));
    assert_eq!(load(&p).unwrap().pixels, v32);
    let mut v2 = npy_bytes("<f4", &[1, 2, 3], false, &f32_le(&v32));
    let hlen = u16::from_le_bytes([v2[8], v2[9]]) as u32;
    v2[6] = 2;
    v2.splice(8..10, hlen.to_le_bytes());
    let p = tmp.write("v2.npy", &v2);
    assert_eq!(load(&p).unwrap().pixels, v32);
}

#[test]
fn bad_files_are_rejected_with_clear_errors() {
    let tmp = TempDir::new("npy-bad");
    let check = |name: &str, bytes: Vec<u8>, want: &str| {
        let p = tmp.write(name, &bytes);
        let e = load_source(&p.display().to_string(), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
        assert!(e.contains(name), "{name}: message must name the file: {e}");
        assert!(!e.contains('\n'), "{e}");
    };
    check(
        "magic.npy",
        b"\x93NUMPX\x01\x00\x10\x00{}".to_vec(),
        "bad magic bytes",
    );
    check(
        "header.npy",
        npy_raw("{'descr': '<f8', 'fortran_order': Nope}", &[]),
        "bad header",
    );
    check(
        "i8.npy",
        npy_bytes("<i8", &[1, 1, 1], false, &[0; 8]),
        "dtype '<i8' is not supported",
    );
    check(
        "c16.npy",
        npy_bytes("<c16", &[1, 1, 1], false, &[0; 16]),
        "dtype '<c16'",
    );
    check(
        "fortran.npy",
        npy_bytes("<f4", &[1, 2, 2], true, &[0; 16]),
        "Fortran",
    );
    check(
        "trunc.npy",
        npy_bytes("<f4", &[2, 2, 2], false, &[0; 20]),
        "truncated npy file",
    );
    check(
        "extra.npy",
        npy_bytes("|u1", &[1, 2, 2], false, &[0; 5]),
        "5 bytes follow",
    );
    check(
        "dims.npy",
        npy_bytes("|u1", &[4, 4], false, &[0; 16]),
        "expected N×H×W or N×C×H×W",
    );
    check(
        "empty.npy",
        npy_bytes("|u1", &[0, 4, 4], false, &[]),
        "holds no data",
    );
    check(
        "nhwc.npy",
        npy_bytes("|u1", &[1, 8, 8, 3], false, &[0; 192]),
        "channels-last",
    );
    check(
        "hdr.npy",
        b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(),
        "truncated",
    );
    check(
        "ver.npy",
        b"\x93NUMPY\x09\x00\x00\x00".to_vec(),
        "version 9.0",
    );
}

#[test]
fn out_of_range_and_non_finite_values() {
    let tmp = TempDir::new("npy-range");
    let mut v = vec![0.5f32; 12];
    v[3] = 255.0;
    v[4] = -2.0;
    let p = tmp.write("r.npy", &npy_bytes("<f4", &[2, 2, 3], false, &f32_le(&v)));
    match load(&p).unwrap_err() {
        DataError::OutOfRange { min, max, .. } => assert_eq!((min, max), (-2.0, 255.0)),
        other => panic!("unexpected {other}"),
    }
    // Within tolerance: clamped.
    let mut v = vec![0.5f32; 12];
    v[0] = 1.0005;
    v[1] = -0.0005;
    let p = tmp.write("t.npy", &npy_bytes("<f4", &[2, 2, 3], false, &f32_le(&v)));
    let set = load(&p).unwrap();
    assert_eq!((set.pixels[0], set.pixels[1]), (1.0, 0.0));

    let mut v = vec![0.5f64; 12];
    v[7] = f64::NAN;
    let p = tmp.write("nan.npy", &npy_bytes("<f8", &[2, 2, 3], false, &f64_le(&v)));
    let e = load(&p).unwrap_err();
    match &e {
        DataError::NonFinite { image, index, .. } => assert_eq!((*image, *index), (1, 7)),
        other => panic!("unexpected {other}"),
    }
    assert!(
        e.to_string().contains("nan.npy") && e.to_string().contains("NaN"),
        "{e}"
    );
    let mut v = vec![0.5f32; 12];
    v[2] = f32::INFINITY;
    let p = tmp.write("inf.npy", &npy_bytes("<f4", &[2, 2, 3], false, &f32_le(&v)));
    assert!(matches!(
        load(&p).unwrap_err(),
        DataError::NonFinite {
            index: 2,
            image: 0,
            ..
        }
    ));
}

#[test]
fn sibling_labels_are_loaded_and_checked() {
    let tmp = TempDir::new("npy-labels");
    let p = tmp.write("x.npy", &npy_bytes("|u1", &[3, 2, 2], false, &[0; 12]));
    let labels: Vec<u8> = [4i64, 0, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    tmp.write("x_labels.npy", &npy_bytes("<i8", &[3], false, &labels));
    assert_eq!(load(&p).unwrap().labels, Some(vec![4, 0, 9]));

    let p = tmp.write("y.npy", &npy_bytes("|u1", &[3, 2, 2], false, &[0; 12]));
    tmp.write("y.labels.npy", &npy_bytes("|u1", &[3], false, &[2, 1, 2]));
    assert_eq!(load(&p).unwrap().labels, Some(vec![2, 1, 2]));

    tmp.write("y.labels.npy", &npy_bytes("|u1", &[2], false, &[2, 1]));
    assert!(matches!(
        load(&p).unwrap_err(),
        DataError::LabelCount {
            images: 3,
            labels: 2,
            ..
        }
    ));
    let neg: Vec<u8> = [1i32, -1, 0].iter().flat_map(|v| v.to_be_bytes()).collect();
    tmp.write("y.labels.npy", &npy_bytes(">i4", &[3], false, &neg));
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("label 1 is -1"), "{e}");
    tmp.write("y.labels.npy", &npy_bytes("<f4", &[3], false, &[0; 12]));
    assert!(
        load(&p)
            .unwrap_err()
            .to_string()
            .contains("not an integer type")
    );
}

#[test]
fn dtype_parsing() {
    assert_eq!(
        parse_dtype("|u1"),
        Some(Dtype::Uint {
            size: 1,
            big: false
        })
    );
    assert_eq!(
        parse_dtype(">f8"),
        Some(Dtype::Float { size: 8, big: true })
    );
    assert_eq!(
        parse_dtype("<i2"),
        Some(Dtype::Int {
            size: 2,
            big: false
        })
    );
    assert_eq!(parse_dtype("<f2"), None);
    assert_eq!(parse_dtype("<U3"), None);
    assert_eq!(parse_dtype(""), None);
}

#[test]
fn shared_lfw_faces_when_present() {
    let Some(shared) = shared_data("shared_lfw_faces_when_present") else {
        return;
    };
    let set = load(&shared.join("faces/lfw_subset.npy")).unwrap();
    assert_eq!(set.len(), 200);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 25,
            width: 25
        }
    );
    assert!(
        (set.pixels[0] - 0.288_888_87).abs() < 1e-6,
        "{}",
        set.pixels[0]
    );
    assert!((set.pixels[1] - 0.329_411_77).abs() < 1e-6);
    let sum0: f32 = set.image(0).iter().sum();
    assert!((sum0 - 258.2379).abs() < 1e-2, "{sum0}");
    let sum_last: f32 = set.image(199).iter().sum();
    assert!((sum_last - 26.8719).abs() < 1e-2, "{sum_last}");
}
