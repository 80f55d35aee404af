//! Denoising images of any size with a trained autoencoder (the same any-size runner scores
//! large images in `crate::anomaly::score::score_any_size`), the benchmark that compares it with
//! the classic filters of `crate::imageops` ([`compare`]) and patch cutting for training on
//! large photographs ([`patches`]).
//!
//! A fully convolutional model (no dense layer) runs on the whole image: the spec is resolved
//! again for the image's size (reflect-padded up to a multiple of the encoder's total stride,
//! cropped afterwards) and the same weights are loaded into it. A model with a dense latent only
//! takes its training size, so it is applied in overlapping tiles whose outputs are blended with
//! a Hann window (weights `sin²`, never zero, so every pixel is covered).

pub mod compare;
pub mod patches;

use crate::data::ImageShape;
use crate::imageops::reflect;
use crate::infer::{batch_tensor, output_values};
use crate::model::{Autoencoder, weights_from_bytes, weights_to_bytes};
use crate::run::LoadedRun;
use crate::spec::{ArchSpec, LayerPlan, ValidSpec};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;

/// How many image sizes keep a resolved model at once.
const MAX_SIZES: usize = 16;

/// Why an image could not be denoised.
#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    #[error(
        "{origin}: images have {got} channel(s) but the model takes {want}; pass --channels {want}"
    )]
    Channels {
        origin: String,
        got: usize,
        want: usize,
    },
    #[error("{origin}: the model cannot run on {shape} images: {reason}")]
    Size {
        origin: String,
        shape: ImageShape,
        reason: String,
    },
    /// The model's weights could not be kept for the other sizes.
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    /// The model's architecture could not be kept for the other sizes.
    #[error("the run's architecture cannot be written back as TOML: {0}")]
    ArchText(#[from] toml::ser::Error),
    /// The denoising benchmark got fewer than two images.
    #[error("the benchmark needs at least 2 images (every fourth tunes the blur), got {0}")]
    TooFewImages(usize),
    /// The model's output could not be read back.
    #[error(transparent)]
    Output(#[from] crate::infer::InferError),
}

/// How the model is applied to images of another size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The whole image at once (no dense layer).
    Whole,
    /// Overlapping tiles of the training size, Hann-blended (dense latent).
    Tiles,
}

/// A trained model ready to denoise images of any size.
pub struct Denoiser {
    arch_text: String,
    weights: Vec<u8>,
    /// The size the model was trained on.
    pub input: ImageShape,
    pub mode: Mode,
    /// Total stride of the encoder: whole-image inputs are padded to a multiple of it.
    factor: [usize; 2],
    /// The model starts with a `zscore` layer: per-pixel statistics of its training size,
    /// so it runs on that size only (neither whole larger images nor tiles mean anything);
    /// the spec says why in its own words (`ValidSpec::at`).
    fixed_size: Option<ValidSpec>,
    device: Device,
    base: Autoencoder,
    resized: HashMap<(usize, usize), Autoencoder>,
}

impl Denoiser {
    /// Prepares `run` (already loaded on `device`).
    pub fn new(run: LoadedRun, device: &Device) -> Result<Denoiser, DenoiseError> {
        let dense = run.spec.layers().any(|l| {
            matches!(
                l.plan,
                LayerPlan::Dense { .. } | LayerPlan::Flatten | LayerPlan::Reshape { .. }
            )
        });
        let mut factor = [1, 1];
        for l in &run.spec.encoder {
            if let LayerPlan::Conv { stride, .. }
            | LayerPlan::MaxPool { stride, .. }
            | LayerPlan::AvgPool { stride, .. } = l.plan
            {
                factor = [factor[0] * stride[0], factor[1] * stride[1]];
            }
        }
        let weights = weights_to_bytes(&run.model)?;
        let arch_text = toml::to_string(&run.config.arch)?;
        Ok(Denoiser {
            arch_text,
            weights,
            input: run.spec.input,
            mode: if dense { Mode::Tiles } else { Mode::Whole },
            factor,
            fixed_size: run.spec.zscore().is_some().then(|| run.spec.clone()),
            device: device.clone(),
            base: run.model,
            resized: HashMap::new(),
        })
    }

    /// The model for `h×w` inputs (the trained one, or the same weights resolved for that size).
    fn model_for(
        &mut self,
        h: usize,
        w: usize,
        origin: &str,
    ) -> Result<&Autoencoder, DenoiseError> {
        if (h, w) == (self.input.height, self.input.width) {
            return Ok(&self.base);
        }
        // A server sees many sizes: keep a few models, not one per size ever seen.
        if !self.resized.contains_key(&(h, w)) && self.resized.len() >= MAX_SIZES {
            self.resized.clear();
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.resized.entry((h, w)) {
            let shape = ImageShape {
                channels: self.input.channels,
                height: h,
                width: w,
            };
            let size_err = |reason: String| DenoiseError::Size {
                origin: origin.to_string(),
                shape,
                reason,
            };

            let spec = ArchSpec::resolve_text("run", &self.arch_text, &[], Some(shape))
                .map_err(|e| size_err(e.to_string()))?;
            let mut model = Autoencoder::new(&spec, &self.device);
            weights_from_bytes(&mut model, self.weights.clone(), origin)
                .map_err(|e| size_err(e.to_string()))?;
            slot.insert(model);
        }
        Ok(&self.resized[&(h, w)])
    }

    /// Runs `model` on CHW images of `shape`; outputs clamped to [0, 1].
    fn run_batch(
        &mut self,
        images: &[f32],
        n: usize,
        (c, h, w): (usize, usize, usize),
        origin: &str,
    ) -> Result<Vec<f32>, DenoiseError> {
        let device = self.device.clone();
        let model = self.model_for(h, w, origin)?;
        let x = Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, c, h, w]), &device);
        Ok(output_values(model.forward(x).clamp(0.0, 1.0))?)
    }

    /// Denoises one CHW image of `shape` (any height and width; channels must match).
    pub fn denoise(
        &mut self,
        image: &[f32],
        shape: ImageShape,
        origin: &str,
    ) -> Result<Vec<f32>, DenoiseError> {
        if shape.channels != self.input.channels {
            return Err(DenoiseError::Channels {
                origin: origin.to_string(),
                got: shape.channels,
                want: self.input.channels,
            });
        }
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        if let Some(spec) = &self.fixed_size
            && (h, w) != (self.input.height, self.input.width)
            && let Err(e) = spec.at(shape)
        {
            return Err(DenoiseError::Size {
                origin: origin.to_string(),
                shape,
                reason: e.to_string(),
            });
        }
        if (h, w) == (self.input.height, self.input.width) {
            return self.run_batch(image, 1, (c, h, w), origin);
        }
        match self.mode {
            Mode::Whole => {
                let ph = h.div_ceil(self.factor[0]) * self.factor[0];
                let pw = w.div_ceil(self.factor[1]) * self.factor[1];
                let padded = pad_reflect(image, (c, h, w), ph, pw);
                let out = self.run_batch(&padded, 1, (c, ph, pw), origin)?;
                // A segmentation model gives back its own channel count (one map).
                let oc = out.len() / (ph * pw).max(1);
                Ok(crop(&out, (oc, ph, pw), h, w))
            }
            Mode::Tiles => self.denoise_tiled(image, (c, h, w), origin),
        }
    }

    /// Hann-blended overlapping tiles of the training size.
    fn denoise_tiled(
        &mut self,
        image: &[f32],
        (c, h, w): (usize, usize, usize),
        origin: &str,
    ) -> Result<Vec<f32>, DenoiseError> {
        let tile = (self.input.height, self.input.width);
        blend_tiles(image, (c, h, w), tile, |tiles, n| {
            self.run_batch(tiles, n, (c, tile.0, tile.1), origin)
        })
    }

    /// Denoises every image of a set whose images have the model's training shape, in batches.
    pub fn denoise_batch(
        &mut self,
        images: &crate::data::ImageSet,
        batch: usize,
    ) -> Result<Vec<f32>, DenoiseError> {
        let s = images.shape;
        if s != self.input {
            let mut out = Vec::with_capacity(images.pixels.len());
            for i in 0..images.len() {
                out.extend(self.denoise(images.image(i), s, &images.origins[i])?);
            }
            return Ok(out);
        }
        let indices: Vec<usize> = (0..images.len()).collect();
        let mut out = Vec::with_capacity(images.pixels.len());
        for chunk in indices.chunks(batch.max(1)) {
            let x = batch_tensor(images, chunk, &self.device);
            out.extend(output_values(self.base.forward(x).clamp(0.0, 1.0))?);
        }
        Ok(out)
    }
}

/// Applies `run` (a batch of `n` CHW tiles in, the same number out, each with the channels the
/// model gives back) to overlapping `th × tw` tiles of `image` (half-tile stride, the last tile
/// flush with the border) and blends the outputs with a Hann window. Images smaller than a tile
/// are reflect-padded up to one.
pub fn blend_tiles<E>(
    image: &[f32],
    (c, h, w): (usize, usize, usize),
    (th, tw): (usize, usize),
    mut run: impl FnMut(&[f32], usize) -> Result<Vec<f32>, E>,
) -> Result<Vec<f32>, E> {
    let (ph, pw) = (h.max(th), w.max(tw));
    let padded = pad_reflect(image, (c, h, w), ph, pw);
    let ys = tile_starts(ph, th);
    let xs = tile_starts(pw, tw);
    let window: Vec<f32> = (0..th * tw)
        .map(|i| hann(i / tw, th) * hann(i % tw, tw))
        .collect();
    let mut sum: Vec<f32> = Vec::new();
    let mut oc = c;
    let mut weight = vec![0.0f32; ph * pw];
    let positions: Vec<(usize, usize)> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
        .collect();
    for chunk in positions.chunks(64) {
        let mut tiles = Vec::with_capacity(chunk.len() * c * th * tw);
        for &(y0, x0) in chunk {
            for ch in 0..c {
                for y in 0..th {
                    let row = ch * ph * pw + (y0 + y) * pw + x0;
                    tiles.extend_from_slice(&padded[row..row + tw]);
                }
            }
        }
        let out = run(&tiles, chunk.len())?;
        if sum.is_empty() {
            oc = (out.len() / (chunk.len() * th * tw).max(1)).max(1);
            sum = vec![0.0f32; oc * ph * pw];
        }
        for (k, &(y0, x0)) in chunk.iter().enumerate() {
            let Some(tile) = out.get(k * oc * th * tw..(k + 1) * oc * th * tw) else {
                continue;
            };
            for y in 0..th {
                for x in 0..tw {
                    let wv = window[y * tw + x];
                    let p = (y0 + y) * pw + x0 + x;
                    weight[p] += wv;
                    for ch in 0..oc {
                        sum[ch * ph * pw + p] += wv * tile[ch * th * tw + y * tw + x];
                    }
                }
            }
        }
    }
    for (i, v) in sum.iter_mut().enumerate() {
        *v /= weight[i % (ph * pw)];
    }
    Ok(crop(&sum, (oc, ph, pw), h, w))
}

/// `sin²(π(i + ½)/n)`: a Hann window sampled between its zeros, so no pixel gets weight 0.
fn hann(i: usize, n: usize) -> f32 {
    let s = (std::f64::consts::PI * (i as f64 + 0.5) / n as f64).sin();
    (s * s) as f32
}

/// Tile origins along an axis of `len` for tiles of `tile` with half-tile stride; the last tile
/// ends at the border.
fn tile_starts(len: usize, tile: usize) -> Vec<usize> {
    let stride = (tile / 2).max(1);
    let mut starts: Vec<usize> = (0..)
        .map(|k| k * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    starts.push(len.saturating_sub(tile));
    starts.dedup();
    starts
}

/// Pads a CHW image at the bottom and right to `ph × pw` by reflection.
fn pad_reflect(image: &[f32], (c, h, w): (usize, usize, usize), ph: usize, pw: usize) -> Vec<f32> {
    if (ph, pw) == (h, w) {
        return image.to_vec();
    }
    let mut out = Vec::with_capacity(c * ph * pw);
    for ch in 0..c {
        for y in 0..ph {
            let row = ch * h * w + reflect(y as isize, h) * w;
            out.extend((0..pw).map(|x| image[row + reflect(x as isize, w)]));
        }
    }
    out
}

/// The top-left `h × w` of a CHW image of `ph × pw`.
fn crop(image: &[f32], (c, ph, pw): (usize, usize, usize), h: usize, w: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            let row = ch * ph * pw + y * pw;
            out.extend_from_slice(&image[row..row + w]);
        }
    }
    out
}

/// Why an image could not be written as PNG.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("cannot write a {0} image as PNG (1 or 3 channels)")]
    Shape(ImageShape),
    #[error("encoding PNG: {0}")]
    Encode(#[from] image::ImageError),
}

/// One CHW image in [0, 1] as a PNG: grey for 1 channel, RGB for 3.
pub fn encode_image_png(image: &[f32], shape: ImageShape) -> Result<Vec<u8>, PngError> {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let plane = h * w;
    if image.len() != c * plane || !(c == 1 || c == 3) {
        return Err(PngError::Shape(shape));
    }
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    use image::ImageEncoder;
    let (data, colour): (Vec<u8>, image::ExtendedColorType) = if c == 1 {
        (
            image.iter().map(|&v| byte(v)).collect(),
            image::ExtendedColorType::L8,
        )
    } else {
        let data = (0..plane)
            .flat_map(|i| {
                [
                    byte(image[i]),
                    byte(image[plane + i]),
                    byte(image[2 * plane + i]),
                ]
            })
            .collect();
        (data, image::ExtendedColorType::Rgb8)
    };
    encoder.write_image(&data, w as u32, h as u32, colour)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
