//! Seeded augmentation of training images: mirror flips, drawn per image from the batch's own
//! `(seed, epoch, step)` stream so that a resumed run sees exactly the same images. Off by
//! default: it is only right for data whose mirror image is as normal as the image itself
//! (solar cells, textures, most inspection images), never for digits or text.

use crate::quote::quote;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Which flips may be applied (each with probability ½).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Left–right mirror.
    pub hflip: bool,
    /// Top–bottom mirror.
    pub vflip: bool,
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
                other => {
                    return Err(format!(
                        "augmentation {text}: unknown item {other}; use hflip, vflip or flip (both)",
                        other = quote(other),
                        text = quote(text)
                    ));
                }
            }
        }
        if a == Augment::default() {
            return Err("augmentation is empty: use hflip, vflip or flip".into());
        }
        Ok(a)
    }
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.hflip, self.vflip) {
            (true, true) => f.write_str("flip"),
            (true, false) => f.write_str("hflip"),
            (false, true) => f.write_str("vflip"),
            (false, false) => Ok(()),
        }
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
    }

    #[test]
    fn flips_mirror_each_plane_and_follow_the_stream() {
        // 2 channels of 2x3.
        let img: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let both = Augment {
            hflip: true,
            vflip: true,
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
