//! Training batches assembled on a helper thread while the model trains on the previous one:
//! gathering the shuffled images and drawing the denoising noise (one random number per pixel)
//! happen off the training thread, two batches ahead. Each batch's noise comes from its own
//! `(seed, epoch, step)` stream, so the values do not depend on thread timing.

use crate::data::ImageSet;
use crate::noise::{NoiseSpec, step_rng};
use std::sync::mpsc::sync_channel;

/// One batch's pixels, `[len, c, h, w]` row-major: the clean targets and, for denoising, the
/// corrupted inputs.
pub(super) struct HostBatch {
    pub len: usize,
    pub clean: Vec<f32>,
    pub noisy: Option<Vec<f32>>,
}

/// What one epoch's batches are made from.
pub(super) struct EpochBatches<'a> {
    pub set: &'a ImageSet,
    /// The epoch's shuffled image order.
    pub order: &'a [usize],
    pub batch_size: usize,
    pub noise: Option<&'a NoiseSpec>,
    pub seed: u64,
    pub epoch: usize,
}

impl EpochBatches<'_> {
    /// Batch `step` (images `order[step·batch_size ..]`).
    fn assemble(&self, step: usize, indices: &[usize]) -> HostBatch {
        let mut clean = Vec::with_capacity(indices.len() * self.set.shape.len());
        for &i in indices {
            clean.extend_from_slice(self.set.image(i));
        }
        let noisy = self.noise.map(|noise| {
            let mut noisy = clean.clone();
            noise.corrupt(&mut noisy, &mut step_rng(self.seed, self.epoch, step));
            noisy
        });
        HostBatch {
            len: indices.len(),
            clean,
            noisy,
        }
    }

    /// Runs `train` on the epoch's batches, in order, while a helper thread prepares the next
    /// ones. If `train` returns early, the helper stops at its next batch.
    pub fn run<R>(&self, train: impl FnOnce(&mut dyn Iterator<Item = HostBatch>) -> R) -> R {
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel(2);
            scope.spawn(move || {
                for (step, indices) in self.order.chunks(self.batch_size.max(1)).enumerate() {
                    if tx.send(self.assemble(step, indices)).is_err() {
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
        let (set, order) = (set(5), vec![4, 0, 3, 1, 2]);
        let noise: NoiseSpec = "gaussian:0.5".parse().unwrap();
        let epoch = EpochBatches {
            set: &set,
            order: &order,
            batch_size: 2,
            noise: Some(&noise),
            seed: 7,
            epoch: 3,
        };
        let batches: Vec<HostBatch> = epoch.run(|it| it.collect());
        assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(&batches[0].clean[..4], set.image(4));
        assert_eq!(&batches[2].clean[..], set.image(2));
        for (step, b) in batches.iter().enumerate() {
            let mut want = b.clean.clone();
            noise.corrupt(&mut want, &mut step_rng(7, 3, step));
            assert_eq!(b.noisy.as_ref(), Some(&want));
        }
        // Stopping early (a diverged step) ends the helper instead of blocking it.
        let first = epoch.run(|it| it.next().map(|b| b.len));
        assert_eq!(first, Some(2));
    }
}
