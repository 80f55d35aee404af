//! Seeded augmentation of training images: random square crops and mirror flips, drawn per
//! image from the batch's own `(seed, epoch, step)` stream so that a resumed run sees exactly
//! the same images. Off by default: flips are only right for data whose mirror image is as
//! normal as the image itself (solar cells, textures, most inspection images), never for digits
//! or text. A crop trains a fully convolutional model on full-resolution detail at the cost of
//! a smaller image (`--resize 256x256 --augment crop:128` costs what 128x128 costs per step);
//! the model then scores whole images.

use super::ImageShape;
use crate::quote::quote;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Which flips may be applied (each with probability ½), and the side of the random crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Left–right mirror.
    pub hflip: bool,
    /// Top–bottom mirror.
    pub vflip: bool,
    /// Train on a `crop × crop` square at a random place of each image.
    pub crop: Option<usize>,
}

impl std::str::FromStr for Augment {
    type Err = String;
    fn from_str(text: &str) -> Result<Augment, String> {
        let mut a = Augment::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "hflip" => a.hflip = true,
                "vflip" => a.vflip = true,
                "flip" => (a.hflip, a.vflip) = (true, true),
                _ if item.starts_with("crop:") => {
                    let side = &item["crop:".len()..];
                    a.crop = Some(side.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                        format!("augmentation {}: the crop side {} must be a whole number of pixels, at least 1, e.g. crop:128", quote(text), quote(side))
                    })?);
                }
                other => {
                    return Err(format!(
                        "augmentation {text}: unknown item {other}; use hflip, vflip, flip (both) or crop:SIDE",
                        other = quote(other),
                        text = quote(text)
                    ));
                }
            }
        }
        if a == Augment::default() {
            return Err("augmentation is empty: use hflip, vflip, flip or crop:SIDE".into());
        }
        Ok(a)
    }
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flips = match (self.hflip, self.vflip) {
            (true, true) => Some("flip"),
            (true, false) => Some("hflip"),
            (false, true) => Some("vflip"),
            (false, false) => None,
        };
        let crop = self.crop.map(|s| format!("crop:{s}"));
        let items: Vec<&str> = flips.into_iter().chain(crop.as_deref()).collect();
        f.write_str(&items.join(","))
    }
}

impl Serialize for Augment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Augment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Augment, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Augment {
    /// The shape of the images training sees: the crop's, when there is one.
    pub fn trained_shape(&self, shape: ImageShape) -> ImageShape {
        match self.crop {
            Some(side) => ImageShape {
                height: side,
                width: side,
                ..shape
            },
            None => shape,
        }
    }

    /// An error unless the crop fits in images of `shape`.
    pub fn check(&self, shape: ImageShape) -> Result<(), String> {
        match self.crop {
            Some(side) if side > shape.height || side > shape.width => Err(format!(
                "--augment crop:{side} is larger than the {}x{} (HxW) images; crop at most {} or resize larger",
                shape.height,
                shape.width,
                shape.height.min(shape.width)
            )),
            _ => Ok(()),
        }
    }

    /// Appends to `out` the part of one CHW image of `shape` training sees: the whole image, or
    /// a crop at a place drawn from `rng` (two draws, whenever there is a crop).
    pub fn cut(&self, image: &[f32], shape: ImageShape, rng: &mut impl Rng, out: &mut Vec<f32>) {
        let Some(side) = self.crop.filter(|&s| s <= shape.height && s <= shape.width) else {
            out.extend_from_slice(image);
            return;
        };
        let top = rng.random_range(0..=shape.height - side);
        let left = rng.random_range(0..=shape.width - side);
        let plane = shape.height * shape.width;
        for c in 0..shape.channels {
            for y in top..top + side {
                let row = c * plane + y * shape.width + left;
                out.extend_from_slice(&image[row..row + side]);
            }
        }
    }

    /// Flips one CHW image in place as drawn from `rng` (two draws per image, always, so the
    /// stream does not depend on what was flipped).
    pub fn apply(&self, image: &mut [f32], (c, h, w): (usize, usize, usize), rng: &mut impl Rng) {
        let (horizontal, vertical) = (rng.random_bool(0.5), rng.random_bool(0.5));
        if image.len() != c * h * w {
            return;
        }
        for plane in image.chunks_mut((h * w).max(1)) {
            if self.hflip && horizontal {
                plane.chunks_mut(w.max(1)).for_each(<[f32]>::reverse);
            }
            if self.vflip && vertical {
                for y in 0..h / 2 {
                    let (top, bottom) = plane.split_at_mut((h - 1 - y) * w);
                    top[y * w..(y + 1) * w].swap_with_slice(&mut bottom[..w]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parses_and_round_trips() {
        let a: Augment = "hflip, vflip".parse().unwrap();
        assert_eq!(a, "flip".parse().unwrap());
        assert_eq!(a.to_string().parse::<Augment>().unwrap(), a);
        assert!(
            "rot90"
                .parse::<Augment>()
                .unwrap_err()
                .contains("unknown item 'rot90'")
        );
        assert!("".parse::<Augment>().is_err());
        let c: Augment = "crop:128,flip".parse().unwrap();
        assert_eq!(c.crop, Some(128));
        assert_eq!(c.to_string(), "flip,crop:128");
        assert_eq!(c.to_string().parse::<Augment>().unwrap(), c);
        assert!(
            "crop:0"
                .parse::<Augment>()
                .unwrap_err()
                .contains("at least 1")
        );
        assert!("crop:x".parse::<Augment>().is_err());
    }

    #[test]
    fn crops_cut_every_channel_at_one_drawn_place() {
        let shape = ImageShape {
            channels: 2,
            height: 4,
            width: 5,
        };
        let img: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let a: Augment = "crop:2".parse().unwrap();
        assert_eq!(
            a.trained_shape(shape),
            ImageShape {
                channels: 2,
                height: 2,
                width: 2
            }
        );
        let mut places = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut out = Vec::new();
            a.cut(&img, shape, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            assert_eq!(out.len(), 8);
            // Each channel's crop is the same place, 20 values apart; rows are contiguous.
            assert_eq!(out[1], out[0] + 1.0);
            assert_eq!(out[2], out[0] + 5.0);
            assert_eq!(out[4], out[0] + 20.0);
            places.insert(out[0] as i32);
        }
        // Every place: rows 0..=2, columns 0..=3.
        assert_eq!(places.len(), 12);
        assert!(a.check(shape).is_ok());
        let big: Augment = "crop:5".parse().unwrap();
        assert!(
            big.check(shape)
                .unwrap_err()
                .contains("larger than the 4x5 (HxW) images")
        );
    }

    #[test]
    fn flips_mirror_each_plane_and_follow_the_stream() {
        // 2 channels of 2x3.
        let img: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let both = Augment {
            hflip: true,
            vflip: true,
            crop: None,
        };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut x = img.clone();
            both.apply(&mut x, (2, 2, 3), &mut ChaCha8Rng::seed_from_u64(seed));
            let mut y = img.clone();
            both.apply(&mut y, (2, 2, 3), &mut ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(x, y, "seed {seed}");
            seen.insert(x.iter().map(|v| *v as i32).collect::<Vec<_>>());
        }
        // Identity, left-right, top-bottom and both: exactly four images.
        assert_eq!(seen.len(), 4);
        assert!(seen.contains(&vec![2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]));
        assert!(seen.contains(&vec![3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]));
    }
}
