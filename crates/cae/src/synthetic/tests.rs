use super::*;
use rand::SeedableRng;

fn grey(h: usize, w: usize) -> Vec<f32> {
    (0..h * w)
        .map(|i| 0.4 + 0.2 * ((i % w) as f32 / w as f32))
        .collect()
}

fn corrupt_with(spec: &SyntheticSpec, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (h, w) = (48, 48);
    let clean = grey(h, w);
    let donor: Vec<f32> = (0..h * w).map(|i| (i % 7) as f32 / 7.0).collect();
    let donors = |_: &mut ChaCha8Rng| -> &[f32] { &donor };
    let mut pixels = clean.clone();
    let mask = spec.corrupt(
        Canvas {
            pixels: &mut pixels,
            shape: (1, h, w),
            donors: &donors,
        },
        &mut ChaCha8Rng::seed_from_u64(seed),
    );
    (clean, pixels, mask)
}

#[test]
fn parses_kinds_and_probability_and_round_trips() {
    let s: SyntheticSpec = "crack, dark@0.25".parse().unwrap();
    assert_eq!(s.kinds, [SyntheticKind::Crack, SyntheticKind::Dark]);
    assert_eq!(s.probability, 0.25);
    assert_eq!(s.to_string(), "crack,dark@0.25");
    assert_eq!(s.to_string().parse::<SyntheticSpec>().unwrap(), s);
    let d: SyntheticSpec = "dark,texture,crack".parse().unwrap();
    assert_eq!(d.probability, DEFAULT_PROBABILITY);
}

#[test]
fn unknown_kind_empty_list_and_bad_probability_are_refused() {
    let e = "dark,cracks".parse::<SyntheticSpec>().unwrap_err();
    assert!(e.to_string().contains("unknown kind 'cracks'"), "{e}");
    assert_eq!(" , ".parse::<SyntheticSpec>(), Err(SyntheticError::Empty));
    for p in ["0", "1.5", "x", "-0.1"] {
        let e = format!("dark@{p}").parse::<SyntheticSpec>().unwrap_err();
        assert!(matches!(e, SyntheticError::Probability { .. }), "{p}: {e}");
    }
}

#[test]
fn the_mask_marks_exactly_where_the_image_changed() {
    for kind in ["dark", "texture", "crack", "line"] {
        let spec: SyntheticSpec = format!("{kind}@1").parse().unwrap();
        let mut hits = 0;
        for seed in 0..20 {
            let (clean, corrupted, mask) = corrupt_with(&spec, seed);
            let marked = mask.iter().filter(|&&m| m == 1.0).count();
            if marked == 0 {
                assert_eq!(clean, corrupted, "{kind} seed {seed}: unmarked change");
                continue;
            }
            hits += 1;
            assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0));
            // Every marked pixel changed by a visible amount on average; far from any marked
            // pixel the image is its own.
            let changed: f32 = (0..mask.len())
                .filter(|&i| mask[i] == 1.0)
                .map(|i| (clean[i] - corrupted[i]).abs())
                .sum::<f32>()
                / marked as f32;
            assert!(changed > 0.02, "{kind} seed {seed}: mean change {changed}");
            let (h, w) = (48usize, 48usize);
            for y in 0..h {
                for x in 0..w {
                    let near = (y.saturating_sub(3)..(y + 4).min(h)).any(|yy| {
                        (x.saturating_sub(3)..(x + 4).min(w)).any(|xx| mask[yy * w + xx] > 0.0)
                    });
                    if !near {
                        assert_eq!(
                            clean[y * w + x],
                            corrupted[y * w + x],
                            "{kind} seed {seed} at {y},{x}"
                        );
                    }
                }
            }
        }
        assert!(
            hits >= 15,
            "{kind}: only {hits} of 20 images got an anomaly"
        );
    }
}

#[test]
fn probability_sets_the_share_of_corrupted_images_and_seeds_repeat() {
    let spec: SyntheticSpec = "dark,crack@0.5".parse().unwrap();
    let corrupted = (0..200)
        .filter(|&s| corrupt_with(&spec, s).2.iter().any(|&m| m > 0.0))
        .count();
    assert!((70..=130).contains(&corrupted), "{corrupted} of 200");
    assert_eq!(corrupt_with(&spec, 9), corrupt_with(&spec, 9));
}

#[test]
fn lines_run_straight_along_an_axis() {
    let spec: SyntheticSpec = "line@1".parse().unwrap();
    let (h, w) = (48usize, 48usize);
    let marked = |mask: &[f32], y: isize, x: isize| {
        y >= 0
            && x >= 0
            && (y as usize) < h
            && (x as usize) < w
            && mask[y as usize * w + x as usize] == 1.0
    };
    // The run of marked pixels through (y, x) along (dy, dx), both ways.
    let run = |mask: &[f32], y: usize, x: usize, (dy, dx): (isize, isize)| {
        let mut n = 1;
        for sign in [1, -1] {
            let (mut yy, mut xx) = (y as isize + sign * dy, x as isize + sign * dx);
            while marked(mask, yy, xx) {
                n += 1;
                yy += sign * dy;
                xx += sign * dx;
            }
        }
        n
    };
    for seed in 0..20 {
        let (_, _, mask) = corrupt_with(&spec, seed);
        for y in 0..h {
            for x in 0..w {
                if mask[y * w + x] == 1.0 {
                    let longest = run(&mask, y, x, (0, 1)).max(run(&mask, y, x, (1, 0)));
                    // Segments are at least a tenth of the side long.
                    assert!(longest >= 4, "seed {seed} at {y},{x}: runs of {longest}");
                }
            }
        }
    }
}
