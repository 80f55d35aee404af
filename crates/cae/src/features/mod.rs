//! Putting a trained encoder to work on labels: latent codes as `.npy` ([`encode`],
//! [`npy_write`]), the linear probe on codes vs pixels ([`probe`], [`softmax`]), and a small CNN
//! classifier initialised from the encoder, fine-tuned and compared with a random start
//! ([`classifier`]).

pub mod classifier;
pub mod npy_write;
pub mod probe;
pub mod softmax;

use crate::data::ImageSet;
use crate::infer::batch_tensor;
use crate::model::Autoencoder;
use burn::tensor::Device;

/// Why codes or classifiers could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(
        "{origin}: the data has no labels; use a labelled source (IDX with its labels file, class folders, .npy with <stem>_labels.npy)"
    )]
    NoLabels { origin: String },
    #[error(
        "cannot hold out {test} test images from {images}; pass --test below the number of images"
    )]
    Split { images: usize, test: usize },
    #[error("{0}")]
    Model(String),
}

/// The flattened codes of every image of `set`: `(values, dim)` with `values.len() = n·dim`.
pub fn encode(
    model: &Autoencoder,
    set: &ImageSet,
    batch: usize,
    device: &Device,
) -> Result<(Vec<f32>, usize), FeatureError> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut values = Vec::new();
    let mut dim = 0;
    for chunk in indices.chunks(batch.max(1)) {
        let code = model.encode(batch_tensor(set, chunk, device)).into_flat();
        dim = code.dims()[1];
        values.extend(
            code.into_data()
                .try_into_vec::<f32>()
                .map_err(|e| FeatureError::Model(format!("reading codes: {e:?}")))?,
        );
    }
    Ok((values, dim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ArchSpec;

    #[test]
    fn codes_have_the_bottleneck_size() {
        let device = Device::flex();
        let spec = ArchSpec::resolve("pytorch-small", &[], None).unwrap();
        let model = Autoencoder::new(&spec, &device);
        let set = ImageSet {
            shape: spec.input,
            pixels: vec![0.5; 3 * 784],
            labels: None,
            class_names: None,
            origins: vec!["a".into(), "b".into(), "c".into()],
        };
        let (codes, dim) = encode(&model, &set, 2, &device).unwrap();
        assert_eq!(dim, 8 * 7 * 7);
        assert_eq!(codes.len(), 3 * dim);
        // identical images, identical codes, across batch boundaries
        assert_eq!(codes[..dim], codes[2 * dim..]);
    }
}
