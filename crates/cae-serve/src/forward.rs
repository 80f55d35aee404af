//! The model's side of the batch worker: one batch of prepared images through the
//! autoencoder with the library's own inference (`cae::infer` for reconstructions,
//! `cae::features::encode` for codes), each image answered with what its request asked for.

use cae::Device;
use cae::data::{ImageSet, ImageShape};
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

/// One prepared image (CHW in [0, 1], the model's input shape) and what to compute.
#[derive(Debug, Clone)]
pub struct ModelJob {
    pub pixels: Arc<[f32]>,
    pub want: Want,
}

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOutput {
    Reconstruction(Vec<f32>),
    Code(Vec<f32>),
}

/// The loaded model, owned by the worker thread.
#[derive(Debug)]
pub struct ModelRunner {
    model: Autoencoder,
    input: ImageShape,
    device: Device,
}

impl ModelRunner {
    pub fn new(model: Autoencoder, input: ImageShape, device: Device) -> ModelRunner {
        ModelRunner {
            model,
            input,
            device,
        }
    }

    /// Runs one batch: all reconstructions in one forward pass, all codes in one encoder pass.
    pub fn run(&self, jobs: Vec<ModelJob>) -> Result<Vec<ModelOutput>, String> {
        let mut outputs: Vec<Option<ModelOutput>> = vec![None; jobs.len()];
        for want in [Want::Reconstruction, Want::Code] {
            let picked: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].want == want).collect();
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
                    let (codes, dim) = encode(&self.model, &set, picked.len(), &self.device)
                        .map_err(|e| e.to_string())?;
                    for (k, code) in codes.chunks_exact(dim.max(1)).enumerate() {
                        outputs[picked[k]] = Some(ModelOutput::Code(code.to_vec()));
                    }
                }
            }
        }
        outputs
            .into_iter()
            .map(|o| o.ok_or_else(|| "the model gave no output for an image".to_string()))
            .collect()
    }

    /// The images at `picked` as one set of the model's input shape.
    fn batch(&self, jobs: &[ModelJob], picked: &[usize]) -> Result<ImageSet, String> {
        let len = self.input.len();
        let mut pixels = Vec::with_capacity(picked.len() * len);
        for &i in picked {
            let p = &jobs[i].pixels;
            if p.len() != len {
                return Err(format!(
                    "an image of {} values reached a model that takes {} ({})",
                    p.len(),
                    len,
                    self.input
                ));
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

    fn image(v: f32) -> Arc<[f32]> {
        (0..784).map(|i| (i % 28) as f32 / 28.0 * v).collect()
    }

    #[test]
    fn a_mixed_batch_answers_each_image_as_it_would_alone() {
        let r = runner();
        let jobs = vec![
            ModelJob {
                pixels: image(1.0),
                want: Want::Code,
            },
            ModelJob {
                pixels: image(0.5),
                want: Want::Reconstruction,
            },
            ModelJob {
                pixels: image(1.0),
                want: Want::Reconstruction,
            },
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
            .run(vec![ModelJob {
                pixels: vec![0.0; 10].into(),
                want: Want::Code,
            }])
            .unwrap_err();
        assert!(e.contains("10 values") && e.contains("1x28x28"), "{e}");
    }
}
