//! Running a trained model over an image set: batches in, reconstructions and quality figures
//! out. Shared by training (validation, per-epoch grids) and the `eval`/`reconstruct` commands.

use crate::data::{ImageSet, ImageShape};
use crate::model::Autoencoder;
use crate::quality::{QualityAccumulator, QualitySummary};
use burn::tensor::{Device, Tensor, TensorData};

/// Why a model could not be run over a set.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The images are of another shape than the model's input.
    #[error("{origin}: images are {data} but the model takes {input}; {hint}")]
    DoesNotFit {
        origin: String,
        data: ImageShape,
        input: ImageShape,
        /// The flag that would make them fit (`pass --channels 1`, `pass --resize 28x28`).
        hint: String,
    },
    /// The backend could not hand the output tensor back as `f32` values.
    #[error("reading the model's output: {0}")]
    Output(String),
}

/// The output tensor's values (`[batch, c, h, w]` row-major).
pub fn output_values(y: Tensor<4>) -> Result<Vec<f32>, InferError> {
    y.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| InferError::Output(format!("{e:?}")))
}

/// The images at `indices` as one `[batch, c, h, w]` tensor.
pub fn batch_tensor(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
    let s = set.shape;
    let mut values = Vec::with_capacity(indices.len() * s.len());
    for &i in indices {
        values.extend_from_slice(set.image(i));
    }
    Tensor::from_data(
        TensorData::new(values, [indices.len(), s.channels, s.height, s.width]),
        device,
    )
}

/// Checks that images of `data` fit a model trained on `input`.
pub fn check_fits(data: ImageShape, input: ImageShape, origin: &str) -> Result<(), InferError> {
    if data == input {
        return Ok(());
    }
    let hint = if data.channels != input.channels {
        format!("pass --channels {}", input.channels)
    } else {
        format!("pass --resize {}x{}", input.height, input.width)
    };
    Err(InferError::DoesNotFit {
        origin: origin.to_string(),
        data,
        input,
        hint,
    })
}

/// Runs every image of `set` through the model (inference mode, outputs clamped to [0, 1]),
/// calling `each` with (index, original, output) in order. The output is the reconstruction, or
/// for a segmentation model (`output_channels`) its anomaly map.
pub fn for_each_reconstruction(
    model: &Autoencoder,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    mut each: impl FnMut(usize, &[f32], &[f32]),
) -> Result<(), InferError> {
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let x = batch_tensor(set, chunk, device);
        // Reconstructions are images: linear-output models are clamped to the data range.
        let y = model.forward(x).clamp(0.0, 1.0);
        let per_image: usize = y.dims()[1..].iter().product();
        let values = output_values(y)?;
        for (k, &i) in chunk.iter().enumerate() {
            each(i, set.image(i), &values[k * per_image..(k + 1) * per_image]);
        }
    }
    Ok(())
}

/// The model's outputs for every image of `set`, not clamped, concatenated in order
/// (`[n, c, h, w]` row-major): what another framework's forward pass should give.
pub fn raw_outputs(
    model: &Autoencoder,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f32>, InferError> {
    let mut out = Vec::with_capacity(set.len() * set.shape.len());
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        out.extend(output_values(
            model.forward(batch_tensor(set, chunk, device)),
        )?);
    }
    Ok(out)
}

/// MSE, PSNR and SSIM of the model's reconstructions of `set`.
pub fn evaluate(
    model: &Autoencoder,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<QualitySummary, InferError> {
    let s = set.shape;
    let mut acc = QualityAccumulator::new((s.channels, s.height, s.width));
    accumulate_quality(model, set, batch_size, device, &mut acc)?;
    Ok(acc.summary())
}

/// Adds the quality of the model's reconstructions of `set` to `acc`: one running mean over
/// several sets (the blocks of a folder read a block at a time) gives what [`evaluate`] of
/// their union gives.
pub fn accumulate_quality(
    model: &Autoencoder,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    acc: &mut QualityAccumulator,
) -> Result<(), InferError> {
    for_each_reconstruction(model, set, batch_size, device, |_, x, y| acc.add(x, y))
}

/// Images as owned CHW vectors, one per image.
pub type Images = Vec<Vec<f32>>;

/// The first `n` images and their reconstructions.
pub fn reconstruct_first(
    model: &Autoencoder,
    set: &ImageSet,
    n: usize,
    device: &Device,
) -> Result<(Images, Images), InferError> {
    let head = set.select(&(0..n.min(set.len())).collect::<Vec<_>>());
    let mut originals = Vec::new();
    let mut recons = Vec::new();
    for_each_reconstruction(model, &head, n.max(1), device, |_, x, y| {
        originals.push(x.to_vec());
        recons.push(y.to_vec());
    })?;
    Ok((originals, recons))
}
