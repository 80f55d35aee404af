//! `builtin:shapes`: a procedural, seeded, labelled data set that needs no files — one shape
//! (circle outline, filled square, filled triangle, line) per image on a black background.
//!
//! It exists so that training, tests and demos run anywhere. Shapes are rendered from signed
//! distance functions with one pixel of antialiasing; every image consumes a fixed number of
//! random draws, so `builtin:shapes:100` is a prefix of `builtin:shapes:4000` with one seed.

use crate::quote::quote;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, ImageSet, ImageShape};

/// Class names of `builtin:shapes`; label `i` is `SHAPE_CLASS_NAMES[i]`.
pub const SHAPE_CLASS_NAMES: [&str; 4] = ["circle", "square", "triangle", "line"];

const DEFAULT_COUNT: usize = 4000;
const DEFAULT_SIDE: usize = 28;
const MAX_COUNT: usize = 1_000_000;
const SIDES: std::ops::RangeInclusive<usize> = 8..=512;
/// At most 2^28 pixels (1 GiB of f32).
const MAX_PIXELS: usize = 1 << 28;

/// Parses `spec` (the part after `builtin:`) and generates the set.
pub(super) fn load(source: &str, spec: &str, seed: u64) -> Result<ImageSet, DataError> {
    let (count, side) = parse_spec(spec).map_err(|reason| DataError::Builtin {
        spec: source.to_string(),
        reason,
    })?;
    Ok(generate(count, side, seed))
}

/// `shapes`, `shapes:N` or `shapes:NxS` → (N, S).
fn parse_spec(spec: &str) -> Result<(usize, usize), String> {
    let (name, args) = match spec.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (spec, None),
    };
    if name != "shapes" {
        return Err(format!(
            "unknown builtin {name}; available: builtin:shapes, builtin:shapes:N, builtin:shapes:NxS",
            name = quote(name)
        ));
    }
    let Some(args) = args else {
        return Ok((DEFAULT_COUNT, DEFAULT_SIDE));
    };
    let (n, s) = match args.split_once(['x', 'X']) {
        Some((n, s)) => (n, Some(s)),
        None => (args, None),
    };
    let count: usize = n.trim().parse().map_err(|_| {
        format!(
            "{n} is not an image count (use e.g. builtin:shapes:2000)",
            n = quote(n)
        )
    })?;
    let side: usize = match s {
        Some(s) => s.trim().parse().map_err(|_| {
            format!(
                "{s} is not an image side (use e.g. builtin:shapes:2000x32)",
                s = quote(s)
            )
        })?,
        None => DEFAULT_SIDE,
    };
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!("count {count} must be between 1 and {MAX_COUNT}"));
    }
    if !SIDES.contains(&side) {
        return Err(format!(
            "side {side} must be between {} and {}",
            SIDES.start(),
            SIDES.end()
        ));
    }
    if count * side * side > MAX_PIXELS {
        return Err(format!(
            "{count} images of {side}x{side} exceed {MAX_PIXELS} pixels; ask for fewer or smaller"
        ));
    }
    Ok((count, side))
}

/// Uniform in [0, 1) from 53 random bits.
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    ((rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) as f32
}

/// Generates `count` images of `side`×`side`; label = `i % 4` (balanced, in every prefix).
pub(super) fn generate(count: usize, side: usize, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plane = side * side;
    let mut pixels = vec![0.0f32; count * plane];
    let mut labels = Vec::with_capacity(count);
    for (i, img) in pixels.chunks_exact_mut(plane.max(1)).enumerate() {
        let kind = i % SHAPE_CLASS_NAMES.len();
        let u: [f32; 5] = std::array::from_fn(|_| unit(&mut rng));
        render(img, side, kind, u);
        labels.push(kind as u32);
    }
    ImageSet {
        shape: ImageShape {
            channels: 1,
            height: side,
            width: side,
        },
        pixels,
        labels: Some(labels),
        class_names: Some(SHAPE_CLASS_NAMES.iter().map(|s| s.to_string()).collect()),
        origins: (0..count).map(|i| format!("builtin:shapes#{i}")).collect(),
    }
}

/// Draws one shape into `img` from five uniform numbers (intensity, angle, size, x, y).
fn render(img: &mut [f32], side: usize, kind: usize, u: [f32; 5]) {
    use std::f32::consts::{FRAC_PI_3, SQRT_2, TAU};
    let s = side as f32;
    let intensity = 0.5 + 0.5 * u[0];
    let angle = u[1] * TAU;
    let (sin, cos) = angle.sin_cos();
    let thick = (s * 0.07).max(1.5);
    // Size parameter and bounding radius per kind.
    let (size, extent) = match kind {
        0 => {
            let r = s * (0.15 + 0.17 * u[2]);
            (r, r + thick / 2.0)
        }
        1 => {
            let h = s * (0.12 + 0.14 * u[2]);
            (h, h * SQRT_2)
        }
        2 => {
            let r = s * (0.18 + 0.17 * u[2]);
            (r, r)
        }
        _ => {
            let l = s * (0.18 + 0.16 * u[2]);
            (l, l + thick / 2.0)
        }
    };
    // 1.5 px beyond the extent keeps even the corner antialiasing of the polygon distance
    // approximations off the border pixels.
    let margin = extent + 1.5;
    let place = |u: f32| {
        let room = s - 2.0 * margin;
        if room > 0.0 {
            margin + u * room
        } else {
            s / 2.0
        }
    };
    let (cx, cy) = (place(u[3]), place(u[4]));
    // Outward normals of the triangle's edges (edge k faces angle + π/3 + k·2π/3).
    let normals: [(f32, f32); 3] = std::array::from_fn(|k| {
        let a = angle + FRAC_PI_3 + k as f32 * 2.0 * FRAC_PI_3;
        (a.cos(), a.sin())
    });
    for y in 0..side {
        for x in 0..side {
            let (px, py) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            // Coordinates in the shape's rotated frame.
            let (lx, ly) = (px * cos + py * sin, -px * sin + py * cos);
            let d = match kind {
                0 => ((px * px + py * py).sqrt() - size).abs() - thick / 2.0,
                1 => lx.abs().max(ly.abs()) - size,
                2 => {
                    normals
                        .iter()
                        .map(|(nx, ny)| px * nx + py * ny)
                        .fold(f32::NEG_INFINITY, f32::max)
                        - size / 2.0
                }
                _ => {
                    let t = lx.clamp(-size, size);
                    ((lx - t) * (lx - t) + ly * ly).sqrt() - thick / 2.0
                }
            };
            let coverage = (0.5 - d).clamp(0.0, 1.0);
            img[y * side + x] = intensity * coverage;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(parse_spec("shapes"), Ok((4000, 28)));
        assert_eq!(parse_spec("shapes:100"), Ok((100, 28)));
        assert_eq!(parse_spec("shapes:2000x32"), Ok((2000, 32)));
        assert!(
            parse_spec("circles")
                .unwrap_err()
                .contains("unknown builtin")
        );
        assert!(parse_spec("shapes:0").is_err());
        assert!(parse_spec("shapes:ten").is_err());
        assert!(parse_spec("shapes:10x4").is_err());
        assert!(parse_spec("shapes:1000000x512").is_err());
        let e = load("builtin:foo", "foo", 0).unwrap_err().to_string();
        assert!(
            e.contains("builtin:foo") && e.contains("unknown builtin"),
            "{e}"
        );
    }

    #[test]
    fn deterministic_per_seed_and_different_across_seeds() {
        let a = generate(64, 28, 7);
        let b = generate(64, 28, 7);
        let c = generate(64, 28, 8);
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.labels, b.labels);
        assert_ne!(a.pixels, c.pixels);
        // A shorter run is a prefix of a longer one.
        let short = generate(10, 28, 7);
        assert_eq!(short.pixels[..], a.pixels[..10 * 784]);
    }

    #[test]
    fn default_set_is_valid_balanced_and_fast() {
        let start = std::time::Instant::now();
        let set = super::super::load("builtin:shapes", &Default::default()).unwrap();
        let elapsed = start.elapsed();
        assert!(elapsed.as_secs_f64() < 1.0, "took {elapsed:?}");
        assert_eq!(set.len(), 4000);
        assert_eq!(
            set.shape,
            ImageShape {
                channels: 1,
                height: 28,
                width: 28
            }
        );
        assert_eq!(set.pixels.len(), 4000 * 784);
        assert!(set.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        let labels = set.labels.as_ref().unwrap();
        for k in 0..4u32 {
            assert_eq!(labels.iter().filter(|&&l| l == k).count(), 1000);
        }
        assert_eq!(set.class_names.as_ref().unwrap()[2], "triangle");
        assert_eq!(set.origins[5], "builtin:shapes#5");
        for i in 0..set.len() {
            let img = set.image(i);
            let max = img.iter().cloned().fold(0.0f32, f32::max);
            let lit = img.iter().filter(|&&v| v > 0.25).count();
            // Every image shows a visible shape that does not fill the frame.
            assert!(max >= 0.45, "image {i}: max {max}");
            assert!((8..600).contains(&lit), "image {i}: {lit} lit pixels");
            // Nothing touches the border rows/columns (the shape fits in the frame).
            let border =
                (0..28).map(|k| img[k] + img[27 * 28 + k] + img[k * 28] + img[k * 28 + 27]);
            assert!(border.sum::<f32>() < 1e-6, "image {i} touches the border");
        }
    }

    #[test]
    fn filled_square_is_brighter_in_total_than_a_line_on_average() {
        let set = generate(400, 28, 3);
        let labels = set.labels.as_ref().unwrap();
        let mean_mass = |k: u32| {
            let idx: Vec<usize> = (0..set.len()).filter(|&i| labels[i] == k).collect();
            idx.iter()
                .map(|&i| set.image(i).iter().sum::<f32>())
                .sum::<f32>()
                / idx.len() as f32
        };
        assert!(
            mean_mass(1) > mean_mass(3) * 1.5,
            "{} vs {}",
            mean_mass(1),
            mean_mass(3)
        );
        assert!(
            mean_mass(2) > mean_mass(3),
            "{} vs {}",
            mean_mass(2),
            mean_mass(3)
        );
    }
}
