//! Pixel conversions shared by every source: channel conversion (1 <-> 3) and per-image
//! resizing. They work on planar f32 data so the IDX, npy, CIFAR, folder and builtin loaders
//! all get the same behaviour from `LoadOptions::channels` and `LoadOptions::resize`.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma};

use super::{DataError, ImageSet, ImageShape, alloc_pixels};

/// ITU-R BT.601 luminance weights for R, G, B.
pub(super) const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Converts every image to `to` channels: 1 -> 3 repeats the plane, 3 -> 1 takes luminance.
/// No-op when the set already has `to` channels.
pub(super) fn convert_channels(set: ImageSet, to: usize) -> Result<ImageSet, DataError> {
    let from = set.shape.channels;
    if from == to {
        return Ok(set);
    }
    if !matches!((from, to), (1, 3) | (3, 1)) {
        return Err(DataError::Channels { from, to });
    }
    let plane = set.shape.height * set.shape.width;
    let shape = ImageShape {
        channels: to,
        ..set.shape
    };
    let mut pixels = alloc_pixels(set.len().checked_mul(shape.len()), &describe(&set))?;
    for i in 0..set.len() {
        let img = set.image(i);
        if to == 3 {
            for _ in 0..3 {
                pixels.extend_from_slice(img);
            }
        } else {
            let (r, rest) = img.split_at(plane);
            let (g, b) = rest.split_at(plane);
            pixels.extend(
                r.iter()
                    .zip(g)
                    .zip(b)
                    .map(|((r, g), b)| (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).clamp(0.0, 1.0)),
            );
        }
    }
    Ok(ImageSet {
        shape,
        pixels,
        ..set
    })
}

/// Resizes every image to `height` × `width` (triangle filter, i.e. bilinear with proper
/// area averaging when shrinking). No-op when the size already matches.
pub(super) fn resize(set: ImageSet, height: usize, width: usize) -> Result<ImageSet, DataError> {
    if set.shape.height == height && set.shape.width == width {
        return Ok(set);
    }
    let shape = ImageShape {
        height,
        width,
        ..set.shape
    };
    let name = describe(&set);
    let mut pixels = alloc_pixels(set.len().checked_mul(shape.len()), &name)?;
    for i in 0..set.len() {
        resize_image_into(set.image(i), set.shape, height, width, &mut pixels, &name)?;
    }
    Ok(ImageSet {
        shape,
        pixels,
        ..set
    })
}

/// Resizes one planar image of `shape` to `height` × `width`, appending it to `out`.
pub(super) fn resize_image_into(
    img: &[f32],
    shape: ImageShape,
    height: usize,
    width: usize,
    out: &mut Vec<f32>,
    name: &str,
) -> Result<(), DataError> {
    let to_u32 = |v: usize| {
        u32::try_from(v).map_err(|_| DataError::TooLarge {
            path: name.to_string(),
            detail: format!("image side {v} exceeds {}", u32::MAX),
        })
    };
    let (w, h) = (to_u32(shape.width)?, to_u32(shape.height)?);
    let (nw, nh) = (to_u32(width)?, to_u32(height)?);
    let plane = shape.height * shape.width;
    for c in 0..shape.channels {
        let src = &img[c * plane..(c + 1) * plane];
        let buf: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_fn(w, h, |x, y| {
            Luma([src[y as usize * shape.width + x as usize]])
        });
        let resized = imageops::resize(&buf, nw, nh, FilterType::Triangle);
        out.extend(resized.into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)));
    }
    Ok(())
}

/// Name for messages about a whole set.
fn describe(set: &ImageSet) -> String {
    set.describe_origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(shape: ImageShape, pixels: Vec<f32>) -> ImageSet {
        let n = pixels.len() / shape.len();
        ImageSet {
            shape,
            pixels,
            labels: None,
            class_names: None,
            origins: (0..n).map(|i| format!("t#{i}")).collect(),
        }
    }

    #[test]
    fn gray_to_rgb_repeats_and_rgb_to_gray_uses_luminance() {
        let s = ImageShape {
            channels: 1,
            height: 1,
            width: 2,
        };
        let rgb = convert_channels(set(s, vec![0.25, 1.0]), 3).unwrap();
        assert_eq!(rgb.shape.channels, 3);
        assert_eq!(rgb.pixels, vec![0.25, 1.0, 0.25, 1.0, 0.25, 1.0]);
        // pure red, pure green → 0.299, 0.587
        let s3 = ImageShape {
            channels: 3,
            height: 1,
            width: 2,
        };
        let gray = convert_channels(set(s3, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]), 1).unwrap();
        assert_eq!(gray.shape.channels, 1);
        assert!((gray.pixels[0] - 0.299).abs() < 1e-6);
        assert!((gray.pixels[1] - 0.587).abs() < 1e-6);
        let err = convert_channels(set(s3, vec![0.0; 6]), 2).unwrap_err();
        assert!(matches!(err, DataError::Channels { from: 3, to: 2 }));
    }

    #[test]
    fn resize_constant_image_stays_constant_and_changes_shape() {
        let s = ImageShape {
            channels: 3,
            height: 4,
            width: 6,
        };
        let mut px = vec![0.2f32; 24];
        px.extend(vec![0.5f32; 24]);
        px.extend(vec![0.9f32; 24]);
        let out = resize(set(s, px), 2, 3).unwrap();
        assert_eq!(
            out.shape,
            ImageShape {
                channels: 3,
                height: 2,
                width: 3
            }
        );
        assert_eq!(out.pixels.len(), 18);
        for (c, want) in [0.2f32, 0.5, 0.9].iter().enumerate() {
            for v in &out.pixels[c * 6..(c + 1) * 6] {
                assert!((v - want).abs() < 1e-5, "channel {c}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn resize_left_right_gradient_keeps_orientation() {
        let s = ImageShape {
            channels: 1,
            height: 2,
            width: 8,
        };
        let row: Vec<f32> = (0..8).map(|x| x as f32 / 7.0).collect();
        let px = [row.clone(), row].concat();
        let out = resize(set(s, px), 4, 4).unwrap();
        for y in 0..4 {
            let r = &out.pixels[y * 4..y * 4 + 4];
            assert!(r[0] < r[1] && r[1] < r[2] && r[2] < r[3], "{r:?}");
        }
    }
}
