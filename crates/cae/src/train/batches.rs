//! Training batches assembled on a helper thread while the model trains on the previous one:
//! gathering the shuffled images, drawing the denoising noise (one random number per pixel) and
//! painting synthetic anomalies happen off the training thread, two batches ahead. Each batch's
//! randomness comes from its own `(seed, epoch, step)` stream, so the values do not depend on
//! thread timing.

use crate::data::{Augment, DataError, ImageSet, ImageShape, decode_workers};
use crate::noise::{NoiseSpec, step_rng};
use crate::run::TrainImages;
use crate::synthetic::SyntheticSpec;
use std::sync::mpsc::sync_channel;

/// One batch's pixels, `[len, c, h, w]` row-major: the clean images and, for denoising and
/// segmentation, the corrupted inputs; for segmentation, the `[len, 1, h, w]` target masks.
pub(super) struct HostBatch {
    /// One image's shape (the crop's, when training crops).
    pub shape: ImageShape,
    pub len: usize,
    pub clean: Vec<f32>,
    pub noisy: Option<Vec<f32>>,
    pub mask: Option<Vec<f32>>,
    /// Streamed files of this batch left out because they could not be read (`skip_bad`),
    /// each as its one-line error.
    pub skipped: Vec<String>,
}

/// What one epoch's batches are made from.
pub(super) struct EpochBatches<'a> {
    pub set: &'a TrainImages,
    /// The epoch's shuffled image order.
    pub order: &'a [usize],
    pub batch_size: usize,
    pub noise: Option<&'a NoiseSpec>,
    pub synthetic: Option<&'a SyntheticSpec>,
    pub augment: Option<Augment>,
    pub seed: u64,
    pub epoch: usize,
    /// Leave out streamed files that cannot be read instead of stopping (`--skip-bad`).
    pub skip_bad: bool,
}

impl EpochBatches<'_> {
    /// Batch `step` (images `order[step·batch_size ..]`).
    /// A streamed set's images are decoded here; a file that cannot be read is the error, or
    /// with `skip_bad` is left out of the batch (which may then be empty).
    fn assemble(&self, step: usize, indices: &[usize]) -> Result<HostBatch, DataError> {
        let augment = self.augment.unwrap_or_default();
        let shape = self.set.shape();
        let s = augment.trained_shape(shape);
        let mut clean = Vec::with_capacity(indices.len() * s.len());
        let mut rng = step_rng(self.seed, self.epoch, step);
        let streamed;
        let mut skipped = Vec::new();
        let (images, order): (&ImageSet, Vec<usize>) = match self.set {
            TrainImages::Memory(set) => (set, indices.to_vec()),
            TrainImages::Files(files) => {
                streamed = if self.skip_bad {
                    let (set, bad) = files.read_skipping(indices, decode_workers());
                    skipped = bad.iter().map(ToString::to_string).collect();
                    set
                } else {
                    self.set.read(indices)?
                };
                (&streamed, (0..streamed.len()).collect())
            }
        };
        for &i in &order {
            augment.cut(images.image(i), shape, &mut rng, &mut clean);
        }
        if self.augment.is_some() {
            for image in clean.chunks_mut(s.len().max(1)) {
                augment.apply(image, (s.channels, s.height, s.width), &mut rng);
            }
        }
        let noisy = self.noise.map(|noise| {
            let mut noisy = clean.clone();
            noise.corrupt(&mut noisy, &mut rng);
            noisy
        });
        let (noisy, mask) = match self.synthetic {
            Some(spec) => {
                let mut corrupted = clean.clone();
                let mask = match self.set {
                    TrainImages::Memory(set) if s == shape => {
                        spec.paint_all(&mut corrupted, set, &mut rng)
                    }
                    // Crops and streamed sets: foreign texture comes from the batch's own
                    // images (a streamed set is never whole in memory).
                    _ => {
                        let donors = ImageSet::unlabelled(s, clean.clone());
                        spec.paint_all(&mut corrupted, &donors, &mut rng)
                    }
                };
                (Some(corrupted), Some(mask))
            }
            None => (noisy, None),
        };
        Ok(HostBatch {
            shape: s,
            len: order.len(),
            clean,
            noisy,
            mask,
            skipped,
        })
    }

    /// Runs `train` on the epoch's batches, in order, while a helper thread prepares the next
    /// ones. If `train` returns early, the helper stops at its next batch.
    pub fn run<R>(
        &self,
        train: impl FnOnce(&mut dyn Iterator<Item = Result<HostBatch, DataError>>) -> R,
    ) -> R {
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel(2);
            scope.spawn(move || {
                for (step, indices) in self.order.chunks(self.batch_size.max(1)).enumerate() {
                    let batch = self.assemble(step, indices);
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            });
            let result = train(&mut rx.iter());
            drop(rx);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;

    fn set(n: usize) -> ImageSet {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 2,
        };
        ImageSet {
            shape,
            pixels: (0..n * 4).map(|v| v as f32 / (n * 4) as f32).collect(),
            labels: None,
            class_names: None,
            origins: (0..n).map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn batches_follow_the_order_and_noise_is_per_step() {
        let (images, order) = (set(5), vec![4, 0, 3, 1, 2]);
        let set = TrainImages::Memory(images.clone());
        let noise: NoiseSpec = "gaussian:0.5".parse().unwrap();
        let epoch = EpochBatches {
            set: &set,
            order: &order,
            batch_size: 2,
            noise: Some(&noise),
            synthetic: None,
            augment: None,
            seed: 7,
            epoch: 3,
            skip_bad: false,
        };
        let batches: Vec<HostBatch> = epoch.run(|it| it.map(Result::unwrap).collect());
        assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(&batches[0].clean[..4], images.image(4));
        assert_eq!(&batches[2].clean[..], images.image(2));
        for (step, b) in batches.iter().enumerate() {
            let mut want = b.clean.clone();
            noise.corrupt(&mut want, &mut step_rng(7, 3, step));
            assert_eq!(b.noisy.as_ref(), Some(&want));
        }
        // Stopping early (a diverged step) ends the helper instead of blocking it.
        let first = epoch.run(|it| it.next().map(|b| b.unwrap().len));
        assert_eq!(first, Some(2));
    }

    #[test]
    fn synthetic_batches_carry_masks_and_repeat_per_step() {
        let shape = ImageShape {
            channels: 1,
            height: 32,
            width: 32,
        };
        let images = ImageSet {
            shape,
            pixels: (0..4 * 1024)
                .map(|v| 0.3 + (v % 13) as f32 / 40.0)
                .collect(),
            labels: None,
            class_names: None,
            origins: (0..4).map(|i| i.to_string()).collect(),
        };
        let set = TrainImages::Memory(images.clone());
        let spec: SyntheticSpec = "dark,crack@1".parse().unwrap();
        let order = vec![2, 0, 1, 3];
        let epoch = EpochBatches {
            set: &set,
            order: &order,
            batch_size: 2,
            noise: None,
            synthetic: Some(&spec),
            augment: None,
            seed: 5,
            epoch: 2,
            skip_bad: false,
        };
        let a: Vec<HostBatch> = epoch.run(|it| it.map(Result::unwrap).collect());
        let b: Vec<HostBatch> = epoch.run(|it| it.map(Result::unwrap).collect());
        for (x, y) in a.iter().zip(&b) {
            let mask = x.mask.as_ref().unwrap();
            assert_eq!(mask.len(), 2 * 1024);
            assert_eq!(Some(mask), y.mask.as_ref());
            assert_eq!(x.noisy, y.noisy);
            // The clean images are the set's; the corrupted ones differ where masked.
            assert_ne!(x.noisy.as_ref(), Some(&x.clean));
        }
        assert_eq!(&a[0].clean[..1024], images.image(2));
    }
}
