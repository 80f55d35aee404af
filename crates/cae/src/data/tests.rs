//! Tests for the shared types and `load`'s dispatch and option handling.

use super::fixture::{TempDir, fixture_images, shared_data};
use super::*;

fn toy(n: usize, labels: Option<Vec<u32>>) -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 1,
        width: 2,
    };
    ImageSet {
        shape,
        pixels: (0..n * 2).map(|i| i as f32).collect(),
        labels,
        class_names: None,
        origins: (0..n).map(|i| format!("toy#{i}")).collect(),
    }
}

#[test]
fn image_shape_parse_display_len() {
    let s = ImageShape::parse("1x28x28").unwrap();
    assert_eq!(
        s,
        ImageShape {
            channels: 1,
            height: 28,
            width: 28
        }
    );
    assert_eq!(s.len(), 784);
    assert!(!s.is_empty());
    assert_eq!(s.to_string(), "1x28x28");
    assert_eq!(
        "3X32x16".parse::<ImageShape>().unwrap().to_string(),
        "3x32x16"
    );
    for bad in ["28x28", "1x0x28", "ax28x28", "", "1x2x3x4"] {
        let e = ImageShape::parse(bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("'{bad}'")) && e.contains("CxHxW"),
            "{e}"
        );
    }
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"channels":1,"height":28,"width":28}"#);
}

#[test]
fn image_and_select() {
    let set = toy(4, Some(vec![0, 1, 2, 3]));
    assert_eq!(set.len(), 4);
    assert!(!set.is_empty());
    assert_eq!(set.image(2), &[4.0, 5.0]);
    let sub = set.select(&[3, 1, 3]);
    assert_eq!(sub.pixels, vec![6.0, 7.0, 2.0, 3.0, 6.0, 7.0]);
    assert_eq!(sub.labels, Some(vec![3, 1, 3]));
    assert_eq!(sub.origins, vec!["toy#3", "toy#1", "toy#3"]);
    assert!(set.select(&[]).is_empty());
}

#[test]
fn split_is_deterministic_disjoint_and_sized() {
    let set = toy(100, Some((0..100).collect()));
    let (train, val) = set.split(0.2, 42).unwrap();
    assert_eq!((train.len(), val.len()), (80, 20));
    let (train2, val2) = set.split(0.2, 42).unwrap();
    assert_eq!(train.origins, train2.origins);
    assert_eq!(val.origins, val2.origins);
    let (_, val3) = set.split(0.2, 43).unwrap();
    assert_ne!(
        val.origins, val3.origins,
        "another seed gives another split"
    );
    let mut all: Vec<u32> = train.labels.clone().unwrap();
    all.extend(val.labels.clone().unwrap());
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>(), "disjoint and complete");
    // Not simply the last 20.
    assert_ne!(val.labels.as_ref().unwrap(), &(80..100).collect::<Vec<_>>());
    // Pixels follow their labels.
    let l = val.labels.as_ref().unwrap()[0] as f32;
    assert_eq!(val.image(0), &[2.0 * l, 2.0 * l + 1.0]);

    assert_eq!(
        set.split(0.001, 1).unwrap().1.len(),
        1,
        "at least one when fraction > 0"
    );
    assert_eq!(set.split(0.0, 1).unwrap().1.len(), 0);
    assert_eq!(set.split(0.333, 1).unwrap().1.len(), 33);
    let two = toy(2, None);
    let (t, v) = two.split(0.5, 5).unwrap();
    assert_eq!((t.len(), v.len()), (1, 1));
    assert!(
        two.split(0.9, 5)
            .unwrap_err()
            .to_string()
            .contains("no images would be left")
    );
    assert!(toy(1, None).split(0.5, 1).is_err());
    assert!(toy(1, None).split(0.1, 1).unwrap().1.is_empty());
    assert!(
        set.split(1.0, 1)
            .unwrap_err()
            .to_string()
            .contains("fraction")
    );
    assert!(set.split(-0.1, 1).is_err());
    assert!(set.split(f64::NAN, 1).is_err());
}

#[test]
fn filter_classes_keeps_matching_labels() {
    let set = toy(6, Some(vec![0, 1, 2, 1, 0, 1]));
    let f = set.filter_classes(&[1, 2]).unwrap();
    assert_eq!(f.labels, Some(vec![1, 2, 1, 1]));
    assert_eq!(f.origins, vec!["toy#1", "toy#2", "toy#3", "toy#5"]);
    assert_eq!(f.image(1), &[4.0, 5.0]);
    match set.filter_classes(&[7]).unwrap_err() {
        DataError::NoneSelected { available, .. } => assert_eq!(available, vec![0, 1, 2]),
        other => panic!("unexpected {other}"),
    }
    let e = toy(3, None).filter_classes(&[0]).unwrap_err().to_string();
    assert!(e.contains("no labels") && e.contains("toy"), "{e}");
}

#[test]
fn options_are_validated() {
    let bad = [
        LoadOptions {
            channels: Some(2),
            ..Default::default()
        },
        LoadOptions {
            resize: Some((0, 28)),
            ..Default::default()
        },
        LoadOptions {
            limit: Some(0),
            ..Default::default()
        },
        LoadOptions {
            classes: Some(vec![]),
            ..Default::default()
        },
    ];
    for o in &bad {
        let e = load("builtin:shapes:8", o).unwrap_err();
        assert!(matches!(e, DataError::InvalidOption { .. }), "{o:?}: {e}");
    }
    let e = load("builtin:shapes:8", &bad[0]).unwrap_err().to_string();
    assert!(
        e.contains("channels = 2") && e.contains("1 (grayscale) or 3 (RGB)"),
        "{e}"
    );
}

#[test]
fn unknown_and_missing_sources() {
    let tmp = TempDir::new("mod-unknown");
    let p = tmp.write("foo.txt", b"hello");
    let e = load(&p.display().to_string(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::UnknownSource { .. }), "{e}");
    assert!(e.to_string().contains("foo.txt") && e.to_string().contains("builtin:shapes"));
    let missing = tmp.s("nope");
    let e = load(&missing, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope"));
    let e = load("builtin:shapes:abc", &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Builtin { .. }), "{e}");
}

#[test]
fn median_normalisation_scales_each_image_to_a_median_of_one_half() {
    let plain = load("builtin:shapes:20", &LoadOptions::default()).unwrap();
    let opts = LoadOptions {
        normalize: Some(Normalize::Median),
        ..LoadOptions::default()
    };
    let set = load("builtin:shapes:20", &opts).unwrap();
    for i in 0..set.len() {
        let m = crate::imageops::median(set.image(i));
        let before = crate::imageops::median(plain.image(i));
        if before > 1e-6 {
            assert!((m - 0.5).abs() < 1e-5, "image {i}: median {m}");
        } else {
            assert_eq!(set.image(i), plain.image(i), "a black image stays as it is");
        }
    }
    assert_eq!("median".parse::<Normalize>(), Ok(Normalize::Median));
    assert!(
        "mean"
            .parse::<Normalize>()
            .unwrap_err()
            .to_string()
            .contains("unknown normalisation")
    );
}

#[test]
fn options_apply_to_builtin_in_order() {
    let opts = LoadOptions {
        channels: Some(3),
        resize: Some((14, 20)),
        classes: Some(vec![2]),
        limit: Some(5),
        normalize: None,
        seed: 9,
        shard: None,
        window: None,
    };
    let set = load("builtin:shapes:100", &opts).unwrap();
    assert_eq!(set.len(), 5);
    assert_eq!(set.labels, Some(vec![2; 5]));
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 3,
            height: 14,
            width: 20
        }
    );
    assert_eq!(set.pixels.len(), 5 * 3 * 14 * 20);
    assert_eq!(set.origins[0], "builtin:shapes#2");
    assert_eq!(set.origins[1], "builtin:shapes#6");
    let img = set.image(0);
    assert_eq!(img[..280], img[280..560], "gray replicated into RGB");
    assert!(img.iter().cloned().fold(0.0f32, f32::max) > 0.3);
    // The seed matters, and is honoured.
    let a = load(
        "builtin:shapes:10x16",
        &LoadOptions {
            seed: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let b = load(
        "builtin:shapes:10x16",
        &LoadOptions {
            seed: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let c = load(
        "builtin:shapes:10x16",
        &LoadOptions {
            seed: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.shape.height, 16);
    assert_eq!(a.pixels, b.pixels);
    assert_ne!(a.pixels, c.pixels);
}

#[test]
fn fixture_through_load_with_options() {
    let opts = LoadOptions {
        classes: Some(vec![3]),
        limit: Some(10),
        ..Default::default()
    };
    let set = load(&fixture_images().display().to_string(), &opts).unwrap();
    assert_eq!(set.len(), 10);
    assert_eq!(set.labels, Some(vec![3; 10]));
    // Label 3 first occurs at index 1 of the fixture.
    assert!(set.origins[0].ends_with("#1"), "{}", set.origins[0]);
    let o = LoadOptions {
        resize: Some((14, 14)),
        limit: Some(3),
        ..Default::default()
    };
    let small = load(&fixture_images().display().to_string(), &o).unwrap();
    assert_eq!(small.shape.len(), 196);
    assert_eq!(small.pixels.len(), 3 * 196);
    // Downscaling keeps the ink: mean intensity roughly preserved.
    let full = load(
        &fixture_images().display().to_string(),
        &LoadOptions::default(),
    )
    .unwrap();
    let m_full: f32 = full.image(0).iter().sum::<f32>() / 784.0;
    let m_small: f32 = small.image(0).iter().sum::<f32>() / 196.0;
    assert!((m_full - m_small).abs() < 0.02, "{m_full} vs {m_small}");
}

#[test]
fn shared_sources_through_load_when_present() {
    let Some(shared) = shared_data("shared_sources_through_load_when_present") else {
        return;
    };
    let s = |rel: &str| shared.join(rel).display().to_string();
    let mnist = load(
        &s("mnist/mnist4k-images-idx3-ubyte.gz"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(mnist.len(), 4000);
    let faces = load(&s("faces/lfw_subset.npy"), &LoadOptions::default()).unwrap();
    assert_eq!(faces.shape.to_string(), "1x25x25");
    let o = LoadOptions {
        channels: Some(1),
        resize: Some((32, 32)),
        ..Default::default()
    };
    let photos = load(&s("photos"), &o).unwrap();
    assert_eq!(
        (photos.len(), photos.shape.to_string()),
        (4, "1x32x32".to_string())
    );
    let one = load(&s("photos/coffee.png"), &LoadOptions::default()).unwrap();
    assert_eq!(one.shape.to_string(), "3x400x600");
}

#[test]
fn shards_are_contiguous_blocks_that_concatenate_to_the_whole() {
    assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
    for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
        let e = Shard::parse(bad).unwrap_err();
        assert!(matches!(e, DataError::Shard { .. }), "{bad}");
        assert!(e.to_string().contains("K/N"), "{bad}");
    }
    let whole = load("builtin:shapes:10", &LoadOptions::default()).unwrap();
    let mut joined = Vec::new();
    for index in 0..3 {
        let opts = LoadOptions {
            shard: Some(Shard { index, count: 3 }),
            ..Default::default()
        };
        joined.extend(load("builtin:shapes:10", &opts).unwrap().origins);
    }
    assert_eq!(joined, whole.origins);
    assert_eq!(Shard { index: 2, count: 3 }.range(10), 6..10);
}

/// Issue 16: two `concat`s joined sets, one checking nothing; `ImageSet::append` is the one.
#[test]
fn one_way_to_join_sets_checks_their_shapes_and_keeps_labels_only_when_both_have_them() {
    let mut a = toy(2, Some(vec![0, 1]));
    a.append(toy(3, Some(vec![1, 1, 0]))).unwrap();
    assert_eq!(a.len(), 5);
    assert_eq!(a.labels.as_deref(), Some(&[0, 1, 1, 1, 0][..]));
    assert_eq!(a.origins.len(), 5);
    a.append(toy(1, None)).unwrap();
    assert!(
        a.labels.is_none(),
        "a set without labels makes the join unlabelled"
    );
    let mut other = toy(1, None);
    other.shape.height += 1;
    other
        .pixels
        .extend(vec![0.0; other.shape.width * other.shape.channels]);
    let e = a.append(other).unwrap_err().to_string();
    assert!(e.contains("but earlier ones are"), "{e}");
}
