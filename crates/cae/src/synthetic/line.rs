//! Thin straight lines along an image axis: broken fingers and finger interruptions of solar
//! cells, scratches along a machining direction, a missing trace on a printed board. Aligned
//! parts put their structure along the axes, and the defects that break it follow; a line one
//! or two pixels wide and faint is what the blob and random-walk painters never produce.

use rand::Rng;

/// 1–4 segments, each horizontal or vertical, on an `h × w` plane; returns the opacity (0–1) of
/// every pixel. A segment's width is 0.4–1.5 pixels and is drawn by coverage: a line narrower
/// than a pixel is a faint row of pixels, as thin lines are after resizing.
pub fn draw(h: usize, w: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut alpha = vec![0.0f32; h * w];
    for _ in 0..rng.random_range(1..5) {
        let vertical = rng.random_bool(0.5);
        // (across, along): the axis the line is thin in, the axis it runs along.
        let (across, along) = if vertical { (w, h) } else { (h, w) };
        let length = rng.random_range((along / 10).max(2)..(along / 2).max(3));
        let start = rng.random_range(0..along.saturating_sub(length).max(1));
        let width = rng.random_range(0.4f32..1.5);
        let centre = rng.random_range(1.0..(across as f32 - 1.0).max(1.5));
        let (low, high) = (centre - width / 2.0, centre + width / 2.0);
        for a in low.floor().max(0.0) as usize..(high.ceil() as usize).min(across) {
            // The share of pixel `a` (the interval [a, a + 1)) the line covers.
            let cover = (high.min(a as f32 + 1.0) - low.max(a as f32)).clamp(0.0, 1.0);
            for b in start..(start + length).min(along) {
                let i = if vertical { b * w + a } else { a * w + b };
                alpha[i] = alpha[i].max(cover);
            }
        }
    }
    alpha
}
