//! The denoising benchmark: corrupt clean images with a noise model, then score the noisy
//! input, the 3×3 median filter, the Gaussian blur and the CAE against the clean images (mean
//! PSNR and SSIM), and draw rows clean / noisy / median / Gaussian / CAE.
//!
//! The Gaussian blur's σ is not an oracle: it is picked (best mean PSNR) on a tuning quarter of
//! the images (every fourth one), and every method is then scored on the other three quarters
//! only. The oracle σ (best on the scored images themselves) is reported beside it.

use super::{DenoiseError, Denoiser};
use crate::data::ImageSet;
use crate::imageops::{gaussian_blur, median3};
use crate::noise::NoiseSpec;
use crate::plot::image_grid;
use crate::quality::{psnr, ssim};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// σ values the Gaussian blur is tuned over.
pub const BLUR_SIGMAS: [f64; 15] = [
    0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0,
];

/// Mean quality of one method against the clean images.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Score {
    pub psnr: f64,
    pub ssim: f64,
}

/// One benchmark row: a noise model and how each method does on it.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub noise: String,
    /// Images scored (the tuning quarter excluded).
    pub images: usize,
    /// Images the blur σ was tuned on.
    pub tuning_images: usize,
    pub noisy: Score,
    pub median3: Score,
    pub gaussian: Score,
    /// σ picked on the tuning images.
    pub gaussian_sigma: f64,
    /// σ that would be best on the scored images, and its score (an upper bound).
    pub gaussian_oracle_sigma: f64,
    pub gaussian_oracle: Score,
    pub cae: Score,
}

/// Images of one method, for the picture: clean, noisy, median, Gaussian, CAE.
pub struct Samples {
    pub rows: [Vec<Vec<f32>>; 5],
}

/// A corrupted copy of `set`, image `i` drawn from stream `i` of `seed` (independent of order).
pub fn corrupt_images(set: &ImageSet, noise: &NoiseSpec, seed: u64) -> ImageSet {
    let mut out = set.clone();
    let n = set.shape.len();
    for (i, image) in out.pixels.chunks_mut(n.max(1)).enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(i as u64);
        noise.corrupt(image, &mut rng);
    }
    out
}

/// Mean PSNR and SSIM of the images `indices` of `outputs` (image after image, aligned with
/// `clean`) against the same images of `clean`.
fn score(clean: &ImageSet, outputs: &[f32], indices: &[usize]) -> Score {
    let s = clean.shape;
    let n = s.len();
    let shape = (s.channels, s.height, s.width);
    let count = indices.len().max(1) as f64;
    let (mut p, mut q) = (0.0, 0.0);
    for &i in indices {
        let out = &outputs[i * n..(i + 1) * n];
        p += psnr(clean.image(i), out);
        q += ssim(clean.image(i), out, shape);
    }
    Score {
        psnr: p / count,
        ssim: q / count,
    }
}

/// Applies `filter` to every image of `set`.
fn filter_all(set: &ImageSet, filter: impl Fn(&[f32]) -> Vec<f32>) -> Vec<f32> {
    (0..set.len()).flat_map(|i| filter(set.image(i))).collect()
}

/// Runs the benchmark on `clean` with one noise model. Every fourth image (0, 4, 8, …) tunes
/// the blur — interleaved, so that patches cut row by row from one photo tune on all of it —
/// and the others are scored. `samples` scored images, evenly spaced, are kept for the picture.
pub fn compare(
    denoiser: &mut Denoiser,
    clean: &ImageSet,
    noise: &NoiseSpec,
    seed: u64,
    batch: usize,
    samples: usize,
) -> Result<(Comparison, Samples), DenoiseError> {
    let n = clean.len();
    if n < 2 {
        return Err(DenoiseError::TooFewImages(n));
    }
    let s = clean.shape;
    let shape = (s.channels, s.height, s.width);
    let (tuning, scored): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 4 == 0);
    let noisy = corrupt_images(clean, noise, seed);

    let blurred_with = |sigma: f64| filter_all(&noisy, |x| gaussian_blur(x, shape, sigma));
    let best = |indices: &[usize], outputs: &[(f64, Vec<f32>)]| {
        outputs
            .iter()
            .map(|(sg, out)| (*sg, score(clean, out, indices)))
            .max_by(|a, b| a.1.psnr.total_cmp(&b.1.psnr))
            .unwrap_or((
                1.0,
                Score {
                    psnr: f64::NAN,
                    ssim: f64::NAN,
                },
            ))
    };
    let all_blurs: Vec<(f64, Vec<f32>)> = BLUR_SIGMAS
        .iter()
        .map(|&sg| (sg, blurred_with(sg)))
        .collect();
    let (sigma, _) = best(&tuning, &all_blurs);
    let (oracle_sigma, oracle) = best(&scored, &all_blurs);
    let blurred = all_blurs
        .into_iter()
        .find(|(sg, _)| *sg == sigma)
        .map(|(_, b)| b)
        .unwrap_or_else(|| blurred_with(sigma));

    let median = filter_all(&noisy, |x| median3(x, shape));
    let cae = denoiser.denoise_batch(&noisy, batch)?;
    let comparison = Comparison {
        noise: noise.to_string(),
        images: scored.len(),
        tuning_images: tuning.len(),
        noisy: score(clean, &noisy.pixels, &scored),
        median3: score(clean, &median, &scored),
        gaussian: score(clean, &blurred, &scored),
        gaussian_sigma: sigma,
        gaussian_oracle_sigma: oracle_sigma,
        gaussian_oracle: oracle,
        cae: score(clean, &cae, &scored),
    };
    let len = s.len();
    // Samples spread evenly over the scored images (patches of a photo come row by row).
    let step = (scored.len() / samples.max(1)).max(1);
    let pick = |v: &[f32]| -> Vec<Vec<f32>> {
        scored
            .iter()
            .step_by(step)
            .take(samples)
            .map(|&i| v[i * len..(i + 1) * len].to_vec())
            .collect()
    };
    let rows = [
        pick(&clean.pixels),
        pick(&noisy.pixels),
        pick(&median),
        pick(&blurred),
        pick(&cae),
    ];
    Ok((comparison, Samples { rows }))
}

/// The picture: one row per method (clean, noisy, median 3×3, Gaussian, CAE), one column per
/// image; several blocks (e.g. noise levels) are stacked top to bottom.
pub fn samples_picture(blocks: &[Samples], shape: (usize, usize, usize), scale: u32) -> RgbImage {
    let mut rows: Vec<Vec<&[f32]>> = Vec::new();
    for (k, b) in blocks.iter().enumerate() {
        if k > 0 {
            rows.push(Vec::new()); // a grey separator row between blocks
        }
        rows.extend(b.rows.iter().map(|r| r.iter().map(Vec::as_slice).collect()));
    }
    image_grid(&rows, shape, scale, 2)
}
