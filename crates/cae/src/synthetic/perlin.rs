//! Perlin gradient noise on a plane: smooth random fields whose thresholded level sets are the
//! blob-shaped regions of synthetic anomalies (DRAEM, Zavrtanik et al. 2021).

use rand::Rng;

/// Gradient noise of `height × width` values in about [−0.7, 0.7], with `cells` lattice cells
/// along each side (more cells, smaller blobs).
pub fn noise(height: usize, width: usize, cells: [usize; 2], rng: &mut impl Rng) -> Vec<f32> {
    let [gy, gx] = [cells[0].max(1), cells[1].max(1)];
    // One random unit gradient per lattice corner.
    let gradients: Vec<(f32, f32)> = (0..(gy + 1) * (gx + 1))
        .map(|_| {
            let a = rng.random_range(0.0..std::f32::consts::TAU);
            (a.cos(), a.sin())
        })
        .collect();
    let corner = |y: usize, x: usize| gradients[y * (gx + 1) + x];
    let fade = |t: f32| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let mut out = Vec::with_capacity(height * width);
    for r in 0..height {
        let fy = r as f32 * gy as f32 / height as f32;
        let (yi, ty) = (fy as usize, fy.fract());
        for c in 0..width {
            let fx = c as f32 * gx as f32 / width as f32;
            let (xi, tx) = (fx as usize, fx.fract());
            let dot = |dy: usize, dx: usize| {
                let (gxv, gyv) = corner(yi + dy, xi + dx);
                gxv * (tx - dx as f32) + gyv * (ty - dy as f32)
            };
            let (u, v) = (fade(tx), fade(ty));
            let top = dot(0, 0) * (1.0 - u) + dot(0, 1) * u;
            let bottom = dot(1, 0) * (1.0 - u) + dot(1, 1) * u;
            out.push(top * (1.0 - v) + bottom * v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn noise_is_smooth_bounded_and_seeded() {
        let a = noise(64, 48, [4, 3], &mut ChaCha8Rng::seed_from_u64(1));
        let b = noise(64, 48, [4, 3], &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        assert_eq!(a.len(), 64 * 48);
        assert!(a.iter().all(|v| v.abs() <= 1.0));
        // Zero at lattice corners, non-trivial in between.
        assert!(a[0].abs() < 1e-6);
        let spread = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.2, "spread {spread}");
        // Neighbours differ little: the field is smooth at this scale.
        let worst = (0..64 * 47)
            .filter(|i| i % 48 != 47)
            .map(|i| (a[i] - a[i + 1]).abs())
            .fold(0f32, f32::max);
        assert!(worst < 0.15, "largest step {worst}");
    }
}
