//! Painting one synthetic defect onto a texture patch: the geometry of each kind (curved
//! scratches, round spots and holes, blotchy stains, straight cuts with a lip, mirrored and
//! shaded folds), composited through a soft opacity map whose support is the mask.

use super::DefectKind;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Opacity of a disk of radius `r` at distance `d`, with a one-pixel soft edge.
fn disk(d: f32, r: f32) -> f32 {
    (r + 0.5 - d).clamp(0.0, 1.0)
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (vx * vx + vy * vy).max(1e-6);
    let t = (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / len2).clamp(0.0, 1.0);
    let (dx, dy) = (p.0 - a.0 - t * vx, p.1 - a.1 - t * vy);
    (dx * dx + dy * dy).sqrt()
}

/// Paints one defect of `kind` onto `pixels` (a `side × side` patch) and returns its mask.
pub fn paint(kind: DefectKind, pixels: &mut [f32], side: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let s = side as f32;
    let orig = pixels.to_vec();
    let mut alpha = vec![0.0f32; side * side];
    let mut target = vec![0.0f32; side * side];
    // Sizes are drawn for 64-pixel patches and capped for smaller ones.
    let point = |rng: &mut ChaCha8Rng, margin: f32| {
        let m = margin.min(s / 2.0 - 1.0);
        (rng.random_range(m..s - m), rng.random_range(m..s - m))
    };
    // Two points at least a third of the patch apart (a line that is visibly a line).
    let far_pair = |rng: &mut ChaCha8Rng, margin: f32| {
        let a = point(rng, margin);
        let mut b = point(rng, margin);
        for _ in 0..64 {
            if ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() >= s / 3.0 {
                break;
            }
            b = point(rng, margin);
        }
        (a, b)
    };
    let dark_or_bright = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            rng.random_range(0.0..0.12)
        } else {
            rng.random_range(0.88..1.0)
        }
    };
    let each = |f: &mut dyn FnMut(usize, (f32, f32))| {
        for y in 0..side {
            for x in 0..side {
                f(y * side + x, (x as f32, y as f32));
            }
        }
    };
    match kind {
        DefectKind::Scratch => {
            let ((a, b), c) = (far_pair(rng, 2.0), point(rng, 2.0));
            let width = rng.random_range(0.6..1.3);
            let value = dark_or_bright(rng);
            // Quadratic Bézier a → b (control c), as short segments.
            let pts: Vec<(f32, f32)> = (0..=24)
                .map(|i| {
                    let t = i as f32 / 24.0;
                    let u = 1.0 - t;
                    (
                        u * u * a.0 + 2.0 * u * t * c.0 + t * t * b.0,
                        u * u * a.1 + 2.0 * u * t * c.1 + t * t * b.1,
                    )
                })
                .collect();
            each(&mut |i, p| {
                let d = pts
                    .windows(2)
                    .map(|w| segment_distance(p, w[0], w[1]))
                    .fold(f32::INFINITY, f32::min);
                alpha[i] = 0.9 * disk(d, width);
                target[i] = value;
            });
        }
        DefectKind::Spot | DefectKind::Hole => {
            let (r, value) = if kind == DefectKind::Spot {
                (rng.random_range(1.5..3.5), dark_or_bright(rng))
            } else {
                (
                    rng.random_range(4.0..9.0f32).min(s / 4.0),
                    rng.random_range(0.0..0.06),
                )
            };
            let c = point(rng, r + 1.0);
            let squash = rng.random_range(0.6..1.0);
            each(&mut |i, (x, y)| {
                let d = ((x - c.0).powi(2) + ((y - c.1) / squash).powi(2)).sqrt();
                alpha[i] = disk(d, r);
                target[i] = value;
            });
        }
        DefectKind::Stain => {
            let c = point(rng, 8.0);
            let blobs: Vec<((f32, f32), f32)> = (0..rng.random_range(3..7))
                .map(|_| {
                    let r = rng.random_range(3.0..8.0f32).min(s / 5.0);
                    let o = (rng.random_range(-6.0..6.0), rng.random_range(-6.0..6.0));
                    ((c.0 + o.0, c.1 + o.1), r)
                })
                .collect();
            let (value, strength) = (dark_or_bright(rng), rng.random_range(0.45..0.7));
            each(&mut |i, (x, y)| {
                let a = blobs
                    .iter()
                    .map(|(b, r)| disk(((x - b.0).powi(2) + (y - b.1).powi(2)).sqrt(), *r))
                    .fold(0.0f32, f32::max);
                alpha[i] = strength * a;
                target[i] = value;
            });
        }
        DefectKind::Cut => {
            let (a, b) = far_pair(rng, 4.0);
            let normal = {
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let n = (vx * vx + vy * vy).sqrt().max(1e-3);
                (-vy / n, vx / n)
            };
            each(&mut |i, p| {
                let d = segment_distance(p, a, b);
                let side_of = (p.0 - a.0) * normal.0 + (p.1 - a.1) * normal.1;
                if d <= 1.2 {
                    alpha[i] = 1.0;
                    target[i] = 0.02;
                } else if d <= 2.4 && side_of > 0.0 {
                    alpha[i] = 0.8;
                    target[i] = 0.95;
                }
            });
        }
        DefectKind::Fold => {
            let (a, angle) = (
                point(rng, s / 4.0),
                rng.random_range(0.0..std::f32::consts::PI),
            );
            let n = (angle.cos(), angle.sin());
            let band = s * rng.random_range(0.05..0.09);
            each(&mut |i, (x, y)| {
                let d = (x - a.0) * n.0 + (y - a.1) * n.1;
                if d.abs() < band {
                    // Mirror across the fold line, shade dark on one side and light on the other.
                    let (mx, my) = (x - 2.0 * d * n.0, y - 2.0 * d * n.1);
                    let (mx, my) = (
                        mx.round().clamp(0.0, s - 1.0),
                        my.round().clamp(0.0, s - 1.0),
                    );
                    let src = orig[my as usize * side + mx as usize];
                    alpha[i] = 1.0;
                    target[i] = (src * (1.0 + 0.6 * d / band) + 0.08 * d.signum()).clamp(0.0, 1.0);
                }
            });
        }
    }
    let mut mask = vec![0u8; side * side];
    for i in 0..side * side {
        // Faint edges are dropped, so the mask is exactly where the patch changed.
        if alpha[i] >= 0.2 {
            mask[i] = 1;
            pixels[i] = (orig[i] * (1.0 - alpha[i]) + target[i] * alpha[i]).clamp(0.0, 1.0);
        }
    }
    mask
}
