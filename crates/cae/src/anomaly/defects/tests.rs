//! Tests for the defect generator: determinism, mask/defect agreement, disjoint blocks and
//! bad settings.

use super::*;

fn texture() -> Vec<f32> {
    // A stripy 128x128 texture with values away from 0 and 1.
    (0..128 * 128)
        .map(|i| 0.3 + 0.3 * (((i % 128) / 3 + (i / 128) / 5) % 2) as f32)
        .collect()
}

fn config(seed: u64) -> DefectConfig {
    DefectConfig {
        patch: 16,
        train: 4,
        test_good: 2,
        per_kind: 3,
        kinds: ALL_KINDS.to_vec(),
        seed,
    }
}

#[test]
fn same_seed_same_patches_other_seed_other_patches() {
    let t = texture();
    let tex = Texture {
        pixels: &t,
        height: 128,
        width: 128,
    };
    let a = generate(tex, &config(5)).unwrap();
    let b = generate(tex, &config(5)).unwrap();
    let c = generate(tex, &config(6)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 4 + 2 + 6 * 3);
    assert_eq!(a.iter().filter(|(f, _)| f == "test/fold").count(), 3);
}

#[test]
fn every_defect_changes_exactly_its_mask() {
    let t = texture();
    let tex = Texture {
        pixels: &t,
        height: 128,
        width: 128,
    };
    for kind in ALL_KINDS {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let clean = cut(tex, 32, 1, &mut rng);
            let mut pixels = clean.clone();
            let mask = paint(kind, &mut pixels, 32, &mut rng);
            let inside = mask.iter().filter(|&&m| m == 1).count();
            assert!(inside >= 4, "{kind:?} seed {seed}: mask of {inside} pixels");
            assert!(inside < 32 * 32 / 2, "{kind:?}: mask covers half the patch");
            let mut changed = 0;
            for i in 0..32 * 32 {
                if mask[i] == 0 {
                    assert_eq!(
                        pixels[i], clean[i],
                        "{kind:?}: pixel {i} outside the mask changed"
                    );
                } else if (pixels[i] - clean[i]).abs() > 0.02 {
                    changed += 1;
                }
            }
            assert!(
                changed * 10 >= inside * 6,
                "{kind:?} seed {seed}: only {changed} of {inside} mask pixels visibly changed"
            );
        }
    }
}

#[test]
fn train_and_test_patches_come_from_disjoint_blocks() {
    // Texture value = block parity: train patches must be all 0.25, test patches all 0.75.
    let t: Vec<f32> = (0..128 * 128)
        .map(|i| {
            if ((i / 128) / 32 + (i % 128) / 32) % 2 == 0 {
                0.25
            } else {
                0.75
            }
        })
        .collect();
    let tex = Texture {
        pixels: &t,
        height: 128,
        width: 128,
    };
    let c = DefectConfig {
        kinds: vec![],
        per_kind: 0,
        ..config(1)
    };
    for (folder, p) in generate(tex, &c).unwrap() {
        let want = if folder.starts_with("train") {
            0.25
        } else {
            0.75
        };
        assert!(p.pixels.iter().all(|&v| v == want), "{folder}");
    }
}

#[test]
fn rejects_textures_too_small_and_non_empty_folders() {
    let t = vec![0.5f32; 40 * 40];
    let tex = Texture {
        pixels: &t,
        height: 40,
        width: 40,
    };
    let e = generate(tex, &config(1)).unwrap_err().to_string();
    assert!(e.contains("smaller --patch"), "{e}");
    let dir = std::env::temp_dir().join(format!("cae-defects-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x"), b"x").unwrap();
    let big = texture();
    let tex = Texture {
        pixels: &big,
        height: 128,
        width: 128,
    };
    let e = write_layout(tex, &config(1), &dir, Overwrite::Refuse)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already holds files"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
