//! Tests for image folders: classes, recursion, decoding errors, sizes and channels.

use super::*;
use crate::data::fixture::{TempDir, shared_data};
use crate::data::load as load_source;
use image::{GrayImage, Luma, Rgb, RgbImage};

fn gray(tmp: &TempDir, rel: &str, w: u32, h: u32, v: u8) -> PathBuf {
    let p = tmp.path().join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    GrayImage::from_fn(w, h, |x, _| Luma([v.wrapping_add(x as u8)]))
        .save(&p)
        .unwrap();
    p
}

fn rgb(tmp: &TempDir, rel: &str, w: u32, h: u32, c: [u8; 3]) -> PathBuf {
    let p = tmp.path().join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    RgbImage::from_pixel(w, h, Rgb(c)).save(&p).unwrap();
    p
}

/// Asserts two pixel slices agree to 1e-6 (decoders may scale by 1/255 or divide by 255).
fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

fn opts() -> LoadOptions {
    LoadOptions::default()
}

#[test]
fn class_subfolders_give_sorted_labels() {
    let tmp = TempDir::new("folder-classes");
    gray(&tmp, "dogs/b.png", 4, 3, 10);
    gray(&tmp, "cats/z.png", 4, 3, 20);
    gray(&tmp, "cats/a.png", 4, 3, 30);
    // BMP stores gray as a palette and decodes as RGB: still gray by content.
    gray(&tmp, "dogs/deep/er/c.bmp", 4, 3, 40);
    gray(&tmp, "empty-class/.hidden.png", 4, 3, 0);
    fs::write(tmp.path().join("dogs/notes.txt"), "not an image").unwrap();
    let set = load(tmp.path(), &opts()).unwrap();
    assert_eq!(set.len(), 4);
    assert_eq!(
        set.class_names,
        Some(vec!["cats".to_string(), "dogs".to_string()])
    );
    assert_eq!(set.labels, Some(vec![0, 0, 1, 1]));
    let tails: Vec<&str> = set
        .origins
        .iter()
        .map(|o| o.strip_prefix(&tmp.s("")).unwrap().trim_start_matches('/'))
        .collect();
    assert_eq!(
        tails,
        [
            "cats/a.png",
            "cats/z.png",
            "dogs/b.png",
            "dogs/deep/er/c.bmp"
        ]
    );
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 3,
            width: 4
        }
    );
    // Pixel values are exact: cats/a.png is 30 + x in every row.
    close(
        &set.image(0)[..4],
        &[30.0 / 255.0, 31.0 / 255.0, 32.0 / 255.0, 33.0 / 255.0],
    );
    close(&set.image(3)[5..6], &[41.0 / 255.0]);

    // Class filter and limit apply before decoding, labels keep their numbers.
    let o = LoadOptions {
        classes: Some(vec![1]),
        limit: Some(1),
        ..opts()
    };
    let dogs = load_source(&tmp.s(""), &o).unwrap();
    assert_eq!(dogs.labels, Some(vec![1]));
    assert!(dogs.origins[0].ends_with("b.png"));
    let o = LoadOptions {
        classes: Some(vec![7]),
        ..opts()
    };
    let e = load_source(&tmp.s(""), &o).unwrap_err();
    assert!(matches!(e, DataError::NoneSelected { .. }), "{e}");
}

#[test]
fn images_at_top_level_mean_no_labels_and_recursion() {
    let tmp = TempDir::new("folder-flat");
    gray(&tmp, "b.png", 2, 2, 0);
    gray(&tmp, "sub/inner/a.PNG", 2, 2, 0);
    gray(&tmp, "a.png", 2, 2, 0);
    let set = load(tmp.path(), &opts()).unwrap();
    assert_eq!(set.len(), 3);
    assert!(set.labels.is_none() && set.class_names.is_none());
    assert!(set.origins[0].ends_with("a.png") && set.origins[1].ends_with("b.png"));
    assert!(set.origins[2].ends_with("sub/inner/a.PNG"));
    let o = LoadOptions {
        classes: Some(vec![0]),
        ..opts()
    };
    assert!(matches!(
        load(tmp.path(), &o).unwrap_err(),
        DataError::NoLabels { .. }
    ));
}

#[test]
fn empty_folder_and_invalid_image() {
    let tmp = TempDir::new("folder-empty");
    fs::create_dir_all(tmp.path().join("a/b")).unwrap();
    fs::write(tmp.path().join("a/readme.txt"), "hi").unwrap();
    let e = load_source(&tmp.s(""), &opts()).unwrap_err().to_string();
    assert!(
        e.starts_with("no images found in folder") && e.contains(&tmp.s("")),
        "{e}"
    );
    assert!(e.contains(".png, .jpg, .jpeg, .bmp"), "{e}");

    gray(&tmp, "a/good.png", 3, 3, 0);
    let bad = tmp.write("a/x.png", b"this is text, not a PNG");
    let e = load_source(&tmp.s(""), &opts()).unwrap_err();
    assert!(matches!(e, DataError::Image { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: not a valid PNG image: ", bad.display())),
        "{msg}"
    );
    // A single image file given directly.
    let e = load_source(&bad.display().to_string(), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.png: not a valid PNG image"), "{e}");
}

#[test]
fn mixed_sizes_need_resize() {
    let tmp = TempDir::new("folder-sizes");
    gray(&tmp, "a.png", 6, 4, 0);
    gray(&tmp, "b.png", 6, 4, 0);
    let c = gray(&tmp, "c.png", 5, 4, 0);
    let e = load(tmp.path(), &opts()).unwrap_err();
    match &e {
        DataError::SizeMismatch {
            path,
            width,
            height,
            ..
        } => {
            assert_eq!(
                (path.as_str(), *width, *height),
                (c.display().to_string().as_str(), 5, 4)
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("resize"), "{e}");
    let o = LoadOptions {
        resize: Some((8, 10)),
        ..opts()
    };
    let set = load_source(&tmp.s(""), &o).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 1,
            height: 8,
            width: 10
        }
    );
    assert_eq!(set.pixels.len(), 3 * 80);
}

#[test]
fn channels_default_and_conversion() {
    let tmp = TempDir::new("folder-chan");
    gray(&tmp, "g.png", 2, 2, 100);
    rgb(&tmp, "r.bmp", 2, 2, [255, 0, 0]);
    // One colour image → 3 channels; the gray one is replicated.
    let set = load(tmp.path(), &opts()).unwrap();
    assert_eq!(set.shape.channels, 3);
    let g = set.image(0);
    close(
        &[g[0], g[4], g[8], g[1]],
        &[100.0 / 255.0, 100.0 / 255.0, 100.0 / 255.0, 101.0 / 255.0],
    );
    close(&set.image(1)[..4], &[1.0; 4]);
    close(&set.image(1)[4..], &[0.0; 8]);
    // Forced gray: luminance 0.299 for pure red.
    let o = LoadOptions {
        channels: Some(1),
        ..opts()
    };
    let set = load(tmp.path(), &o).unwrap();
    assert_eq!(set.shape.channels, 1);
    assert!((set.image(1)[0] - 0.299).abs() < 1e-6);
    close(&set.image(0)[1..2], &[101.0 / 255.0]);
    // Forced RGB on an all-gray folder.
    let tmp2 = TempDir::new("folder-chan2");
    gray(&tmp2, "g.jpg", 8, 8, 128);
    let o = LoadOptions {
        channels: Some(3),
        ..opts()
    };
    let set = load_source(&tmp2.s("g.jpg"), &o).unwrap();
    assert_eq!(
        set.shape,
        ImageShape {
            channels: 3,
            height: 8,
            width: 8
        }
    );
    assert_eq!(set.image(0)[3], set.image(0)[64 + 3]);
    assert!(
        (set.image(0)[0] - 128.0 / 255.0).abs() < 0.03,
        "JPEG ~128: {}",
        set.image(0)[0]
    );
}

#[test]
fn shared_textures_and_photos_when_present() {
    let Some(shared) = shared_data("shared_textures_and_photos_when_present") else {
        return;
    };
    let tex = load(&shared.join("textures"), &opts()).unwrap();
    assert_eq!(tex.len(), 2);
    assert_eq!(
        tex.shape,
        ImageShape {
            channels: 1,
            height: 512,
            width: 512
        }
    );
    assert!(tex.origins[0].ends_with("brick.png") && tex.origins[1].ends_with("grass.png"));
    let mean: f32 = tex.image(0).iter().sum::<f32>() / (512.0 * 512.0);
    assert!(mean > 0.05 && mean < 0.95, "{mean}");

    let e = load(&shared.join("photos"), &opts()).unwrap_err();
    assert!(matches!(e, DataError::SizeMismatch { .. }), "{e}");
    let o = LoadOptions {
        resize: Some((64, 64)),
        ..opts()
    };
    let photos = load(&shared.join("photos"), &o).unwrap();
    assert_eq!(photos.len(), 4);
    assert_eq!(
        photos.shape,
        ImageShape {
            channels: 3,
            height: 64,
            width: 64
        }
    );
    // camera.png is grayscale: its three planes are equal.
    let cam = photos
        .origins
        .iter()
        .position(|o| o.ends_with("camera.png"))
        .unwrap();
    let img = photos.image(cam);
    assert_eq!(img[..4096], img[4096..8192]);
}

#[cfg(unix)]
fn link(tmp: &TempDir, target: &str, at: &str) {
    std::os::unix::fs::symlink(target, tmp.path().join(at)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_symlinked_class_folder_into_another_class_is_an_error_not_dog_images_under_cat() {
    let tmp = TempDir::new("folder-link-class");
    gray(&tmp, "cat/c.png", 4, 3, 10);
    gray(&tmp, "dog/d.png", 4, 3, 20);
    link(&tmp, "../dog", "cat/to-dog");
    let e = load(tmp.path(), &opts()).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, DataError::Link { .. }), "{m}");
    assert!(
        m.contains("cat/to-dog: leads into") && m.contains("/dog"),
        "{m}"
    );
    // A linked image file into another class is the same error.
    fs::remove_file(tmp.path().join("cat/to-dog")).unwrap();
    link(&tmp, "../dog/d.png", "cat/d.png");
    let m = load(tmp.path(), &opts()).unwrap_err().to_string();
    assert!(m.contains("cat/d.png: leads into"), "{m}");
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_or_a_second_link_to_one_folder_is_an_error_naming_the_link() {
    let tmp = TempDir::new("folder-link-loop");
    gray(&tmp, "cat/c.png", 4, 3, 10);
    link(&tmp, "..", "cat/up");
    let m = load(tmp.path(), &opts()).unwrap_err().to_string();
    assert!(
        m.contains("cat/up: a symbolic link to") && m.contains("(a loop)"),
        "{m}"
    );
    fs::remove_file(tmp.path().join("cat/up")).unwrap();
    // Two names for one class folder would read its images twice.
    link(&tmp, "cat", "kitty");
    let m = load(tmp.path(), &opts()).unwrap_err().to_string();
    assert!(
        m.contains("kitty: the same folder as") && m.contains("cat"),
        "{m}"
    );
}

#[cfg(unix)]
#[test]
fn class_folders_linked_from_elsewhere_are_read_and_dangling_links_skipped() {
    let store = TempDir::new("folder-link-store");
    gray(&store, "cats/a.png", 4, 3, 10);
    gray(&store, "cats/b.png", 4, 3, 11);
    let tmp = TempDir::new("folder-link-root");
    gray(&tmp, "dog/d.png", 4, 3, 20);
    std::os::unix::fs::symlink(store.path().join("cats"), tmp.path().join("cat")).unwrap();
    link(&tmp, "nowhere.png", "dog/gone.png");
    let set = load(tmp.path(), &opts()).unwrap();
    assert_eq!(set.class_names, Some(vec!["cat".into(), "dog".into()]));
    assert_eq!(set.labels, Some(vec![0, 0, 1]));
    // Images are named by the path they were reached by.
    assert!(set.origins[0].ends_with("cat/a.png"), "{:?}", set.origins);
}
