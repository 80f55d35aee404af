//! Seeded augmentation of training images: random square crops, mirror flips, quarter turns,
//! brightness and contrast, drawn per image from the batch's own `(seed, epoch, step)` stream
//! so that a resumed run sees exactly the same images. Off by default. Flips and turns are
//! only right for data whose mirror or turned image is as normal as the image itself (textures,
//! most inspection images; solar cells mirror but do not turn, their busbars run one way), never
//! for digits or text. Brightness and contrast only for data whose lighting varies between good
//! parts. A crop trains a fully convolutional model on full-resolution detail at the cost of a
//! smaller image (`--resize 256x256 --augment crop:128` costs what 128x128 costs per step); the
//! model then scores whole images.

use super::ImageShape;
use crate::quote::{InvalidValue, quote};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An augmentation that does not fit the images.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AugmentError {
    #[error("--augment crop:{side} is larger than the {height}x{width} (HxW) images; crop at most {} or resize larger", height.min(width))]
    CropTooLarge {
        side: usize,
        height: usize,
        width: usize,
    },
    #[error(
        "--augment rot90 turns square images only, but they are {height}x{width} (HxW); resize them square or add crop:SIDE"
    )]
    TurnNotSquare { height: usize, width: usize },
}

/// What may be applied to each training image.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augment {
    /// Left–right mirror (probability ½).
    pub hflip: bool,
    /// Top–bottom mirror (probability ½).
    pub vflip: bool,
    /// Train on a `crop × crop` square at a random place of each image.
    pub crop: Option<usize>,
    /// A quarter turn 0–3 times, equally likely (square images only).
    pub rot90: bool,
    /// Add one value drawn from ±`brightness` to every pixel (values stay ≥ 0).
    pub brightness: Option<f32>,
    /// Scale the image around its mean by a factor drawn from 1 ± `contrast`.
    pub contrast: Option<f32>,
}

/// The number after `name:` in `item`, in `(0, max]`.
fn strength(text: &str, item: &str, name: &str, max: f32) -> Result<f32, InvalidValue> {
    let value = &item[name.len() + 1..];
    value
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= max)
        .ok_or_else(|| {
            InvalidValue::new(
                "augmentation",
                text,
                format!(
                    "{name}:{} must be a number in (0, {max}], e.g. {name}:0.1",
                    quote(value)
                ),
            )
        })
}

const ITEMS: &str = "hflip, vflip, flip (both), rot90, crop:SIDE, brightness:B or contrast:C";

impl std::str::FromStr for Augment {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Augment, InvalidValue> {
        let mut a = Augment::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "hflip" => a.hflip = true,
                "vflip" => a.vflip = true,
                "flip" => (a.hflip, a.vflip) = (true, true),
                "rot90" => a.rot90 = true,
                _ if item.starts_with("crop:") => {
                    let side = &item["crop:".len()..];
                    a.crop = Some(side.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                        InvalidValue::new("augmentation", text, format!("the crop side {} must be a whole number of pixels, at least 1, e.g. crop:128", quote(side)))
                    })?);
                }
                _ if item.starts_with("brightness:") => {
                    a.brightness = Some(strength(text, item, "brightness", 1.0)?);
                }
                _ if item.starts_with("contrast:") => {
                    a.contrast = Some(strength(text, item, "contrast", 0.9)?);
                }
                other => {
                    return Err(InvalidValue::new(
                        "augmentation",
                        text,
                        format!("unknown item {}; use {ITEMS}", quote(other)),
                    ));
                }
            }
        }
        if a == Augment::default() {
            return Err(InvalidValue::new(
                "augmentation",
                text,
                format!("is empty: use {ITEMS}"),
            ));
        }
        Ok(a)
    }
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flips = match (self.hflip, self.vflip) {
            (true, true) => Some("flip".to_string()),
            (true, false) => Some("hflip".to_string()),
            (false, true) => Some("vflip".to_string()),
            (false, false) => None,
        };
        let items: Vec<String> = flips
            .into_iter()
            .chain(self.crop.map(|s| format!("crop:{s}")))
            .chain(self.rot90.then(|| "rot90".to_string()))
            .chain(self.brightness.map(|b| format!("brightness:{b}")))
            .chain(self.contrast.map(|c| format!("contrast:{c}")))
            .collect();
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

    /// An error unless the crop fits in images of `shape` and turns meet square images.
    pub fn check(&self, shape: ImageShape) -> Result<(), AugmentError> {
        let (height, width) = (shape.height, shape.width);
        match self.crop {
            Some(side) if side > height || side > width => Err(AugmentError::CropTooLarge {
                side,
                height,
                width,
            }),
            _ if self.rot90 && height != width && self.crop.is_none() => {
                Err(AugmentError::TurnNotSquare { height, width })
            }
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

    /// Flips, turns and relights one CHW image in place as drawn from `rng`: two flip draws per
    /// image always (as before the other items existed), then one draw per turn, brightness or
    /// contrast item asked, so the stream does not depend on what the draws did.
    pub fn apply(&self, image: &mut [f32], (c, h, w): (usize, usize, usize), rng: &mut impl Rng) {
        let (horizontal, vertical) = (rng.random_bool(0.5), rng.random_bool(0.5));
        // Further draws only for the items asked, so older runs keep their streams.
        let turns = if self.rot90 {
            rng.random_range(0..4)
        } else {
            0
        };
        let shift = self.brightness.map(|b| rng.random_range(-b..=b));
        let scale = self.contrast.map(|k| rng.random_range(1.0 - k..=1.0 + k));
        if image.len() != c * h * w {
            return;
        }
        if turns > 0 && h == w {
            for plane in image.chunks_mut((h * w).max(1)) {
                for _ in 0..turns {
                    quarter_turn(plane, h);
                }
            }
        }
        if let Some(k) = scale {
            let mean = image.iter().sum::<f32>() / image.len().max(1) as f32;
            image
                .iter_mut()
                .for_each(|v| *v = (mean + (*v - mean) * k).max(0.0));
        }
        if let Some(b) = shift {
            image.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
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

/// Turns one `side × side` plane a quarter turn clockwise, in place.
fn quarter_turn(plane: &mut [f32], side: usize) {
    let copy = plane.to_vec();
    for y in 0..side {
        for x in 0..side {
            // (y, x) of the turned plane comes from (side-1-x, y) of the original.
            plane[y * side + x] = copy[(side - 1 - x) * side + y];
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
            "rot45"
                .parse::<Augment>()
                .unwrap_err()
                .to_string()
                .contains("unknown item 'rot45'")
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
                .to_string()
                .contains("at least 1")
        );
        assert!("crop:x".parse::<Augment>().is_err());
    }

    #[test]
    fn turns_brightness_and_contrast_parse_apply_and_follow_the_stream() {
        let a: Augment = "rot90,brightness:0.2,contrast:0.5".parse().unwrap();
        assert_eq!(a.to_string(), "rot90,brightness:0.2,contrast:0.5");
        assert_eq!(a.to_string().parse::<Augment>().unwrap(), a);
        assert!(
            "brightness:2"
                .parse::<Augment>()
                .unwrap_err()
                .to_string()
                .contains("(0, 1]")
        );
        assert!("contrast:x".parse::<Augment>().is_err());
        let mut turned = std::collections::BTreeSet::new();
        let turn: Augment = "rot90".parse().unwrap();
        for seed in 0..40 {
            let mut x: Vec<f32> = (0..4).map(|v| v as f32).collect();
            turn.apply(&mut x, (1, 2, 2), &mut ChaCha8Rng::seed_from_u64(seed));
            turned.insert(x.iter().map(|v| *v as i32).collect::<Vec<_>>());
        }
        // [0 1; 2 3] and its three turns, nothing else.
        let expected: std::collections::BTreeSet<Vec<i32>> = [
            vec![0, 1, 2, 3],
            vec![2, 0, 3, 1],
            vec![3, 2, 1, 0],
            vec![1, 3, 0, 2],
        ]
        .into();
        assert_eq!(turned, expected);
        // Lighting: same seed, same image; values stay >= 0; the mean moves by the shift only.
        let light: Augment = "brightness:0.1,contrast:0.5".parse().unwrap();
        let img: Vec<f32> = (0..16).map(|v| v as f32 / 16.0).collect();
        let run = |seed| {
            let mut x = img.clone();
            light.apply(&mut x, (1, 4, 4), &mut ChaCha8Rng::seed_from_u64(seed));
            x
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert!((0..20).all(|s| run(s).iter().all(|&v| v >= 0.0)));
        let square = ImageShape {
            channels: 1,
            height: 4,
            width: 6,
        };
        assert_eq!(
            turn.check(square).unwrap_err(),
            AugmentError::TurnNotSquare {
                height: 4,
                width: 6
            }
        );
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
                .to_string()
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
            ..Augment::default()
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
