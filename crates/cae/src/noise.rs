//! Noise models for denoising autoencoders: the corruption applied on the fly to training
//! inputs (the target stays clean), to benchmark inputs, and to images given to `cae denoise
//! --add-noise`.
//!
//! A [`NoiseSpec`] is a comma-separated list such as `gaussian:0.3,salt_pepper:0.05`, applied
//! left to right; it is stored in run configs as that same string. Randomness comes only from
//! the [`ChaCha8Rng`] the caller passes, so a stream seeded per epoch and step reproduces the
//! same corruption after a resume.

use crate::quote::quote;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One corruption.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// `x + σ·N(0, 1)`, clipped to [0, 1].
    Gaussian(f64),
    /// Each value becomes 0 or 1 (equally likely) with probability `p`.
    SaltPepper(f64),
    /// Each value becomes 0 with probability `p` (masking noise, Vincent et al. 2010).
    Mask(f64),
    /// `x + x·σ·N(0, 1)`, clipped to [0, 1] (multiplicative noise).
    Speckle(f64),
}

/// Noise names users write, for messages and suggestions.
const NAMES: [&str; 4] = ["gaussian", "salt_pepper", "mask", "speckle"];

/// Why a noise spec is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoiseError {
    #[error(
        "noise {text}: unknown noise model {name}{hint}; use gaussian:SIGMA, salt_pepper:P, mask:P or speckle:SIGMA", name = quote(.name), text = quote(.text))]
    Unknown {
        text: String,
        name: String,
        hint: String,
    },
    #[error("noise {text}: {item} needs a level after ':', e.g. {name}:{example}", item = quote(.item), text = quote(.text))]
    MissingLevel {
        text: String,
        item: String,
        name: &'static str,
        example: &'static str,
    },
    #[error("noise {text}: level {level} of {name} {reason}", level = quote(.level), text = quote(.text))]
    BadLevel {
        text: String,
        name: &'static str,
        level: String,
        reason: &'static str,
    },
    #[error("noise is empty: use e.g. gaussian:0.5 or gaussian:0.3,salt_pepper:0.05")]
    Empty,
}

/// A list of corruptions applied in order.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSpec {
    pub steps: Vec<Noise>,
}

impl Noise {
    fn name(&self) -> &'static str {
        match self {
            Noise::Gaussian(_) => "gaussian",
            Noise::SaltPepper(_) => "salt_pepper",
            Noise::Mask(_) => "mask",
            Noise::Speckle(_) => "speckle",
        }
    }

    fn level(&self) -> f64 {
        match *self {
            Noise::Gaussian(v) | Noise::SaltPepper(v) | Noise::Mask(v) | Noise::Speckle(v) => v,
        }
    }

    /// Parses one `name:level` item of `text`.
    fn parse(item: &str, text: &str) -> Result<Noise, NoiseError> {
        let (name, level) = match item.split_once(':') {
            Some((n, l)) => (n.trim(), Some(l.trim())),
            None => (item.trim(), None),
        };
        let canonical: &'static str = match name.to_ascii_lowercase().as_str() {
            "gaussian" | "gauss" => "gaussian",
            "salt_pepper" | "salt-pepper" | "s&p" | "saltpepper" => "salt_pepper",
            "mask" | "masking" | "dropout" => "mask",
            "speckle" => "speckle",
            _ => {
                return Err(NoiseError::Unknown {
                    text: text.into(),
                    name: name.into(),
                    hint: crate::suggest::did_you_mean(name, NAMES),
                });
            }
        };
        let is_probability = matches!(canonical, "salt_pepper" | "mask");
        let example = if is_probability { "0.1" } else { "0.5" };
        let Some(level) = level.filter(|l| !l.is_empty()) else {
            return Err(NoiseError::MissingLevel {
                text: text.into(),
                item: item.trim().into(),
                name: canonical,
                example,
            });
        };
        let bad = |reason| NoiseError::BadLevel {
            text: text.into(),
            name: canonical,
            level: level.into(),
            reason,
        };
        let v: f64 = level.parse().map_err(|_| bad("is not a number"))?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad("must be a finite number ≥ 0"));
        }
        if is_probability && v > 1.0 {
            return Err(bad("is a probability and must be in [0, 1]"));
        }
        Ok(match canonical {
            "gaussian" => Noise::Gaussian(v),
            "salt_pepper" => Noise::SaltPepper(v),
            "mask" => Noise::Mask(v),
            _ => Noise::Speckle(v),
        })
    }

    /// Corrupts `pixels` in place.
    fn apply(&self, pixels: &mut [f32], rng: &mut ChaCha8Rng) {
        match *self {
            Noise::Gaussian(sigma) => {
                for p in pixels.iter_mut() {
                    *p = (*p + (sigma * standard_normal(rng)) as f32).clamp(0.0, 1.0);
                }
            }
            Noise::Speckle(sigma) => {
                for p in pixels.iter_mut() {
                    *p = (*p * (1.0 + (sigma * standard_normal(rng)) as f32)).clamp(0.0, 1.0);
                }
            }
            Noise::SaltPepper(prob) => {
                for p in pixels.iter_mut() {
                    let u: f64 = rng.random();
                    if u < prob {
                        *p = if u < prob / 2.0 { 0.0 } else { 1.0 };
                    }
                }
            }
            Noise::Mask(prob) => {
                for p in pixels.iter_mut() {
                    if rng.random::<f64>() < prob {
                        *p = 0.0;
                    }
                }
            }
        }
    }
}

/// A standard normal draw (Box–Muller; one of the pair is discarded to keep streams simple).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl NoiseSpec {
    /// Applies every corruption, in order, to `pixels` (values in [0, 1]).
    pub fn corrupt(&self, pixels: &mut [f32], rng: &mut ChaCha8Rng) {
        for step in &self.steps {
            step.apply(pixels, rng);
        }
    }

    /// A corrupted copy of `pixels` from a stream seeded with `seed`.
    pub fn corrupted(&self, pixels: &[f32], seed: u64) -> Vec<f32> {
        let mut out = pixels.to_vec();
        self.corrupt(&mut out, &mut ChaCha8Rng::seed_from_u64(seed));
        out
    }
}

/// The noise stream of one training step: depends only on the run seed, the epoch and the step,
/// so a resumed run draws exactly the noise an uninterrupted one would.
pub fn step_rng(seed: u64, epoch: usize, step: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ 0x6e6f_6973_6500_0000 ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    rng.set_stream(step as u64);
    rng
}

impl std::str::FromStr for NoiseSpec {
    type Err = NoiseError;
    fn from_str(text: &str) -> Result<NoiseSpec, NoiseError> {
        let items: Vec<&str> = text.split(',').filter(|s| !s.trim().is_empty()).collect();
        if items.is_empty() {
            return Err(NoiseError::Empty);
        }
        let steps = items
            .iter()
            .map(|item| Noise::parse(item, text))
            .collect::<Result<_, _>>()?;
        Ok(NoiseSpec { steps })
    }
}

impl fmt::Display for NoiseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", s.name(), s.level())?;
        }
        Ok(())
    }
}

impl Serialize for NoiseSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for NoiseSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NoiseSpec, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> NoiseSpec {
        s.parse().unwrap()
    }

    #[test]
    fn parses_lists_and_prints_them_back() {
        let n = spec("gaussian:0.3, salt_pepper:0.05");
        assert_eq!(n.steps, vec![Noise::Gaussian(0.3), Noise::SaltPepper(0.05)]);
        assert_eq!(n.to_string(), "gaussian:0.3,salt_pepper:0.05");
        assert_eq!(spec("dropout:0.25").steps, vec![Noise::Mask(0.25)]);
        assert_eq!(spec("speckle:1").to_string(), "speckle:1");
    }

    #[test]
    fn typos_are_clear_errors() {
        let e = "gausian:0.5".parse::<NoiseSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown noise model 'gausian'"), "{e}");
        assert!(e.contains("did you mean 'gaussian'"), "{e}");
        let e = "gaussian".parse::<NoiseSpec>().unwrap_err().to_string();
        assert!(e.contains("needs a level"), "{e}");
        let e = "salt_pepper:1.5"
            .parse::<NoiseSpec>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("probability"), "{e}");
        let e = "gaussian:abc".parse::<NoiseSpec>().unwrap_err().to_string();
        assert!(e.contains("not a number"), "{e}");
        assert!("gaussian:-1".parse::<NoiseSpec>().is_err());
        assert_eq!("".parse::<NoiseSpec>(), Err(NoiseError::Empty));
        for e in [
            "gausian:0.5".parse::<NoiseSpec>().unwrap_err(),
            "x".parse::<NoiseSpec>().unwrap_err(),
        ] {
            assert_eq!(e.to_string().lines().count(), 1);
        }
    }

    #[test]
    fn gaussian_noise_has_the_requested_spread() {
        // Mid-grey images so that clipping at 0 and 1 is rare for σ = 0.1.
        let clean = vec![0.5f32; 100_000];
        let noisy = spec("gaussian:0.1").corrupted(&clean, 3);
        let n = noisy.len() as f64;
        let mean = noisy.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = noisy
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - 0.5).abs() < 2e-3, "{mean}");
        assert!((var.sqrt() - 0.1).abs() < 2e-3, "{}", var.sqrt());
        assert!(noisy.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn salt_pepper_and_mask_hit_the_requested_share() {
        let clean = vec![0.5f32; 100_000];
        let sp = spec("salt_pepper:0.2").corrupted(&clean, 1);
        let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / 1e5;
        let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / 1e5;
        assert!((salt - 0.1).abs() < 0.005 && (pepper - 0.1).abs() < 0.005);
        let m = spec("mask:0.3").corrupted(&clean, 1);
        let zero = m.iter().filter(|&&v| v == 0.0).count() as f64 / 1e5;
        assert!((zero - 0.3).abs() < 0.005, "{zero}");
        // speckle leaves black pixels black
        let s = spec("speckle:0.5").corrupted(&[0.0, 0.0, 0.5], 1);
        assert_eq!(&s[..2], &[0.0, 0.0]);
    }

    #[test]
    fn streams_depend_only_on_seed_epoch_and_step() {
        let n = spec("gaussian:0.5");
        let draw = |e, s| {
            let mut v = vec![0.5f32; 16];
            n.corrupt(&mut v, &mut step_rng(7, e, s));
            v
        };
        assert_eq!(draw(2, 3), draw(2, 3));
        assert_ne!(draw(2, 3), draw(2, 4));
        assert_ne!(draw(2, 3), draw(3, 3));
    }

    #[test]
    fn round_trips_through_toml() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T {
            noise: NoiseSpec,
        }
        let t = T {
            noise: spec("gaussian:0.5,mask:0.1"),
        };
        let text = toml::to_string(&t).unwrap();
        assert_eq!(text.trim(), "noise = \"gaussian:0.5,mask:0.1\"");
        assert_eq!(toml::from_str::<T>(&text).unwrap(), t);
        let e = toml::from_str::<T>("noise = \"gaus:0.5\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown noise model"), "{e}");
    }
}
