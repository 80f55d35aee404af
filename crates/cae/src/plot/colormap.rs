//! The heatmap colormap: matplotlib's perceptually uniform `inferno` (black → purple → orange →
//! pale yellow), whose luminance rises monotonically, so brighter always means "more".

/// `inferno` sampled at LUT indices 0, 8, 16, …, 248 and 255 of matplotlib's 256-entry table
/// (RGB in `[0, 1]`). Linear interpolation between these knots stays within 1.5/255 of the full
/// table.
const INFERNO: [[f32; 3]; 33] = [
    [0.001462, 0.000466, 0.013866],
    [0.013995, 0.011225, 0.071862],
    [0.042253, 0.028139, 0.141141],
    [0.081962, 0.043328, 0.215289],
    [0.129285, 0.047293, 0.290788],
    [0.183429, 0.040329, 0.354971],
    [0.238273, 0.036621, 0.396353],
    [0.290763, 0.045644, 0.418637],
    [0.341500, 0.062325, 0.429425],
    [0.391453, 0.080927, 0.433109],
    [0.441207, 0.099338, 0.431594],
    [0.491022, 0.117179, 0.425552],
    [0.540920, 0.134729, 0.415123],
    [0.590734, 0.152563, 0.400290],
    [0.640135, 0.171438, 0.381065],
    [0.688653, 0.192239, 0.357603],
    [0.735683, 0.215906, 0.330245],
    [0.780517, 0.243327, 0.299523],
    [0.822386, 0.275197, 0.266085],
    [0.860533, 0.311892, 0.230606],
    [0.894305, 0.353399, 0.193584],
    [0.923215, 0.399359, 0.155193],
    [0.946965, 0.449191, 0.115272],
    [0.965397, 0.502249, 0.073859],
    [0.978422, 0.557937, 0.034931],
    [0.985952, 0.615750, 0.025592],
    [0.987874, 0.675267, 0.065257],
    [0.984075, 0.736087, 0.129527],
    [0.974638, 0.797692, 0.206332],
    [0.960626, 0.859069, 0.298010],
    [0.947594, 0.917399, 0.410665],
    [0.954529, 0.965896, 0.540361],
    [0.988362, 0.998364, 0.644924],
];

/// LUT index (0..=255) of knot `k`.
fn knot(k: usize) -> f32 {
    (k * 8).min(255) as f32
}

/// Maps `t` in `[0, 1]` to an RGB colour of the `inferno` colormap: 0 is near-black, 1 is pale
/// yellow. Values outside `[0, 1]` are clamped; `NaN` maps like 0.
pub fn colormap(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * 255.0;
    let k = ((pos / 8.0) as usize).min(INFERNO.len() - 2);
    let (lo, hi) = (knot(k), knot(k + 1));
    let f = ((pos - lo) / (hi - lo)).clamp(0.0, 1.0);
    let (a, b) = (INFERNO[k], INFERNO[k + 1]);
    let mix = |i: usize| {
        ((a[i] + (b[i] - a[i]) * f) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    [mix(0), mix(1), mix(2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luminance([r, g, b]: [u8; 3]) -> f32 {
        0.2126 * f32::from(r) + 0.7152 * f32::from(g) + 0.0722 * f32::from(b)
    }

    #[test]
    fn endpoints_match_inferno() {
        assert_eq!(colormap(0.0), [0, 0, 4]);
        assert_eq!(colormap(1.0), [252, 255, 164]);
        assert_ne!(colormap(0.0), colormap(1.0));
        // Out of range and NaN are clamped.
        assert_eq!(colormap(-3.0), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
        assert_eq!(colormap(f32::NAN), colormap(0.0));
        // matplotlib's inferno(128/255) = (0.735683, 0.215906, 0.330245)
        assert_eq!(colormap(128.0 / 255.0), [188, 55, 84]);
    }

    #[test]
    fn luminance_is_monotone() {
        let mut prev = -1.0;
        for i in 0..=256 {
            let l = luminance(colormap(i as f32 / 256.0));
            // Rounding to u8 can wobble by well under one unit.
            assert!(
                l >= prev - 0.5,
                "luminance drops at step {i}: {prev} -> {l}"
            );
            prev = prev.max(l);
        }
        // And clearly increasing over coarser steps.
        for i in 0..16 {
            let a = luminance(colormap(i as f32 / 16.0));
            let b = luminance(colormap((i + 1) as f32 / 16.0));
            assert!(b > a + 3.0, "step {i}: {a} -> {b}");
        }
    }
}
