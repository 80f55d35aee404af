//! Thin crack-like lines: random walks whose heading turns a little at every pixel (each line
//! its own amount, from nearly straight to wiggly), drawn anti-aliased.

use rand::Rng;

/// 1–3 lines on an `h × w` plane; returns the opacity (0–1) of every pixel.
pub fn draw(h: usize, w: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut alpha = vec![0.0f32; h * w];
    let lines = rng.random_range(1..4);
    for _ in 0..lines {
        let (mut y, mut x) = (
            rng.random_range(0.0..h as f32),
            rng.random_range(0.0..w as f32),
        );
        let mut heading = rng.random_range(0.0..std::f32::consts::TAU);
        let steps = rng.random_range((h / 6).max(2)..(3 * h / 2).max(3));
        let width = rng.random_range(0.5f32..1.5);
        // From nearly straight (cell cracks) to wiggly (scratches): the largest turn per pixel.
        let wiggle = rng.random_range(0.03f32..0.45);
        for _ in 0..steps {
            heading += rng.random_range(-wiggle..wiggle);
            y += heading.sin();
            x += heading.cos();
            stamp(&mut alpha, (h, w), (y, x), width);
        }
    }
    alpha
}

/// A soft disc of radius `width + ½` around `(y, x)`, kept at the maximum opacity so far.
fn stamp(alpha: &mut [f32], (h, w): (usize, usize), (y, x): (f32, f32), width: f32) {
    if !(y >= 0.0 && x >= 0.0 && (y as usize) < h && (x as usize) < w) {
        return;
    }
    let (iy, ix) = (y as isize, x as isize);
    for py in (iy - 2).max(0)..(iy + 3).min(h as isize) {
        for px in (ix - 2).max(0)..(ix + 3).min(w as isize) {
            let d = ((py as f32 - y).powi(2) + (px as f32 - x).powi(2)).sqrt();
            let a = (width + 0.5 - d).clamp(0.0, 1.0);
            let cell = &mut alpha[py as usize * w + px as usize];
            *cell = cell.max(a);
        }
    }
}
