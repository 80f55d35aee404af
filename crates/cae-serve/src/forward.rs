//! The model's side of the batch worker: one batch of prepared images through the
//! autoencoder with the library's own inference (`cae::infer` for reconstructions,
//! `cae::features::encode` for codes), each image answered with what its request asked for.
//! Images of another size than the model's (a run trained without `--resize`) run one by one
//! through the library's any-size runner (`cae::denoise::Denoiser`, as `cae anomaly score`
//! does): a fully convolutional model on the whole image, one with a dense code in blended
//! tiles.

use cae::Device;
use cae::data::{ImageSet, ImageShape};
use cae::denoise::Denoiser;
use cae::features::encode;
use cae::infer::for_each_reconstruction;
use cae::model::Autoencoder;
use std::sync::Arc;

/// What a request needs from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The reconstruction (CHW, clamped to [0, 1]): scores, heatmaps, `/v1/reconstruct`.
    Reconstruction,
    /// The flattened latent code: `/v1/encode`.
    Code,
}

/// One prepared image (CHW in [0, 1] of `shape`) and what to compute.
#[derive(Debug, Clone)]
pub struct ModelJob {
    pub pixels: Arc<[f32]>,
    pub shape: ImageShape,
    pub want: Want,
}

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOutput {
    Reconstruction(Vec<f32>),
    Code(Vec<f32>),
    /// The model cannot take this image (its size); the other images of the batch are
    /// answered.
    Refused(String),
}

/// Why a whole batch got no answer (each image's own refusal is [`ModelOutput::Refused`]).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// An image of another size reached a model that takes one size only.
    #[error("a {given} image reached a model that takes {input}")]
    Size {
        given: ImageShape,
        input: ImageShape,
    },
    /// An image's pixel count does not match its shape.
    #[error("an image of {values} values reached a model that takes {expected} ({input})")]
    Values {
        values: usize,
        expected: usize,
        input: ImageShape,
    },
    /// The forward pass failed.
    #[error(transparent)]
    Infer(#[from] cae::infer::InferError),
    /// The encoder pass failed.
    #[error(transparent)]
    Encode(#[from] cae::features::FeatureError),
    /// An image was left without an output (a bug in the batching).
    #[error("the model gave no output for an image")]
    Missing,
}

/// The loaded model, owned by the worker thread.
pub struct ModelRunner {
    model: Autoencoder,
    input: ImageShape,
    device: Device,
    /// The runner for images of other sizes, when the run takes them.
    any_size: Option<Denoiser>,
}

impl ModelRunner {
    pub fn new(model: Autoencoder, input: ImageShape, device: Device) -> ModelRunner {
        ModelRunner {
            model,
            input,
            device,
            any_size: None,
        }
    }

    /// Also runs images of other sizes, through `runner`.
    pub fn with_any_size(mut self, runner: Denoiser) -> ModelRunner {
        self.any_size = Some(runner);
        self
    }

    /// Runs one batch: all reconstructions of the model's size in one forward pass, all codes
    /// in one encoder pass, images of other sizes one by one.
    pub fn run(&mut self, jobs: Vec<ModelJob>) -> Result<Vec<ModelOutput>, ForwardError> {
        let mut outputs: Vec<Option<ModelOutput>> = vec![None; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            if job.shape == self.input {
                continue;
            }
            let runner = self.any_size.as_mut().ok_or(ForwardError::Size {
                given: job.shape,
                input: self.input,
            })?;
            outputs[i] = Some(match job.want {
                Want::Code => ModelOutput::Refused(format!(
                    "codes come from {} images only (the bottleneck of another size is another code), not {}",
                    self.input, job.shape
                )),
                Want::Reconstruction => match runner.denoise(&job.pixels, job.shape, "image") {
                    Ok(y) => ModelOutput::Reconstruction(y),
                    Err(e) => ModelOutput::Refused(e.to_string()),
                },
            });
        }
        for want in [Want::Reconstruction, Want::Code] {
            let picked: Vec<usize> = (0..jobs.len())
                .filter(|&i| jobs[i].want == want && jobs[i].shape == self.input)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let set = self.batch(&jobs, &picked)?;
            match want {
                Want::Reconstruction => {
                    for_each_reconstruction(
                        &self.model,
                        &set,
                        picked.len(),
                        &self.device,
                        |k, _, y| {
                            outputs[picked[k]] = Some(ModelOutput::Reconstruction(y.to_vec()));
                        },
                    )?;
                }
                Want::Code => {
                    let (codes, dim) = encode(&self.model, &set, picked.len(), &self.device)?;
                    for (k, code) in codes.chunks_exact(dim.max(1)).enumerate() {
                        outputs[picked[k]] = Some(ModelOutput::Code(code.to_vec()));
                    }
                }
            }
        }
        outputs
            .into_iter()
            .map(|o| o.ok_or(ForwardError::Missing))
            .collect()
    }

    /// The images at `picked` as one set of the model's input shape.
    fn batch(&self, jobs: &[ModelJob], picked: &[usize]) -> Result<ImageSet, ForwardError> {
        let len = self.input.len();
        let mut pixels = Vec::with_capacity(picked.len() * len);
        for &i in picked {
            let p = &jobs[i].pixels;
            if p.len() != len {
                return Err(ForwardError::Values {
                    values: p.len(),
                    expected: len,
                    input: self.input,
                });
            }
            pixels.extend_from_slice(p);
        }
        Ok(ImageSet {
            shape: self.input,
            pixels,
            labels: None,
            class_names: None,
            origins: vec![String::from("request"); picked.len()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cae::spec::ArchSpec;

    fn runner() -> ModelRunner {
        let device = Device::flex();
        let spec = ArchSpec::resolve("pytorch-small", &[], None).unwrap();
        ModelRunner::new(Autoencoder::new(&spec, &device), spec.input, device)
    }

    fn job(pixels: Arc<[f32]>, want: Want) -> ModelJob {
        let shape = ImageShape::parse("1x28x28").unwrap();
        ModelJob {
            pixels,
            shape,
            want,
        }
    }

    fn image(v: f32) -> Arc<[f32]> {
        (0..784).map(|i| (i % 28) as f32 / 28.0 * v).collect()
    }

    #[test]
    fn a_mixed_batch_answers_each_image_as_it_would_alone() {
        let mut r = runner();
        let jobs = vec![
            job(image(1.0), Want::Code),
            job(image(0.5), Want::Reconstruction),
            job(image(1.0), Want::Reconstruction),
        ];
        let together = r.run(jobs.clone()).unwrap();
        for (job, out) in jobs.into_iter().zip(&together) {
            let alone = r.run(vec![job]).unwrap().remove(0);
            match (out, &alone) {
                (ModelOutput::Code(a), ModelOutput::Code(b)) => {
                    assert_eq!(a.len(), 8 * 7 * 7);
                    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
                }
                (ModelOutput::Reconstruction(a), ModelOutput::Reconstruction(b)) => {
                    assert_eq!(a.len(), 784);
                    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
                    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
                }
                other => panic!("wrong kinds: {other:?}"),
            }
        }
        assert_ne!(together[1], together[2]);
    }

    #[test]
    fn a_wrongly_sized_image_fails_the_batch_without_a_panic() {
        let e = runner()
            .run(vec![job(vec![0.0; 10].into(), Want::Code)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("10 values") && e.contains("1x28x28"), "{e}");
    }
}
