//! Multinomial logistic (softmax) regression in plain Rust: the linear classifier of the probe.
//!
//! Features are standardised with the training set's mean and standard deviation (constant
//! features are dropped to 0). The objective is the mean cross-entropy plus `λ/2·‖W‖²` with
//! `λ = 1/N` — scikit-learn's `LogisticRegression(C=1)` — minimised by Nesterov-momentum
//! mini-batch SGD with a step of `1/mean‖x‖²` (the curvature bound of the loss), seeded shuffles.
//! Same inputs and seed give the same weights.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// How the classifier is trained.
#[derive(Debug, Clone)]
pub struct SoftmaxConfig {
    /// Passes over the training set (at least `min_updates` updates are made in any case).
    pub epochs: usize,
    pub min_updates: usize,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for SoftmaxConfig {
    fn default() -> Self {
        SoftmaxConfig {
            epochs: 60,
            min_updates: 1500,
            batch_size: 128,
            seed: 42,
        }
    }
}

/// A trained classifier.
#[derive(Debug, Clone)]
pub struct Softmax {
    pub dim: usize,
    pub classes: usize,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// `classes × dim`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Softmax {
    /// Trains on `n` rows of `dim` features (`x`, row-major) with labels `< classes`.
    pub fn fit(
        x: &[f32],
        dim: usize,
        labels: &[u32],
        classes: usize,
        cfg: &SoftmaxConfig,
    ) -> Softmax {
        let n = labels.len();
        let mut mean = vec![0.0f64; dim];
        let mut sq = vec![0.0f64; dim];
        for row in x.chunks(dim.max(1)).take(n) {
            for (j, &v) in row.iter().enumerate() {
                mean[j] += v as f64;
                sq[j] += (v as f64) * (v as f64);
            }
        }
        let nf = n.max(1) as f64;
        let mean: Vec<f32> = mean.iter().map(|m| (m / nf) as f32).collect();
        let inv_std: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(s, &m)| {
                let var = s / nf - (m as f64) * (m as f64);
                if var > 1e-12 {
                    (1.0 / var.sqrt()) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let mut model = Softmax {
            dim,
            classes,
            mean,
            inv_std,
            weights: vec![0.0; classes * dim],
            bias: vec![0.0; classes],
        };
        if n == 0 || classes == 0 {
            return model;
        }
        let z: Vec<f32> = x[..n * dim]
            .chunks(dim)
            .flat_map(|row| model.standardise(row))
            .collect();
        let norm2 = z.iter().map(|v| (v * v) as f64).sum::<f64>() / nf;
        let lr = (1.0 / (norm2 + 1.0)) as f32;
        let lambda = (1.0 / nf) as f32;
        let momentum = 0.9f32;
        let batch = cfg.batch_size.clamp(1, n);
        let steps_per_epoch = n.div_ceil(batch);
        let updates = (cfg.epochs * steps_per_epoch).max(cfg.min_updates);
        let mut vw = vec![0.0f32; classes * dim];
        let mut vb = vec![0.0f32; classes];
        let mut gw = vec![0.0f32; classes * dim];
        let mut gb = vec![0.0f32; classes];
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut probs = vec![0.0f32; classes];
        let mut done = 0;
        while done < updates {
            order.shuffle(&mut rng);
            for chunk in order.chunks(batch) {
                if done == updates {
                    break;
                }
                // Nesterov: evaluate the gradient at the look-ahead point.
                let look_w: Vec<f32> = model
                    .weights
                    .iter()
                    .zip(&vw)
                    .map(|(w, v)| w + momentum * v)
                    .collect();
                let look_b: Vec<f32> = model
                    .bias
                    .iter()
                    .zip(&vb)
                    .map(|(b, v)| b + momentum * v)
                    .collect();
                gw.iter_mut().for_each(|g| *g = 0.0);
                gb.iter_mut().for_each(|g| *g = 0.0);
                for &i in chunk {
                    let row = &z[i * dim..(i + 1) * dim];
                    logits_into(&look_w, &look_b, row, &mut probs);
                    softmax_in_place(&mut probs);
                    probs[labels[i] as usize] -= 1.0;
                    for (k, &p) in probs.iter().enumerate() {
                        gb[k] += p;
                        let g = &mut gw[k * dim..(k + 1) * dim];
                        for (gj, &xj) in g.iter_mut().zip(row) {
                            *gj += p * xj;
                        }
                    }
                }
                let scale = 1.0 / chunk.len() as f32;
                for ((v, g), w) in vw.iter_mut().zip(&gw).zip(&look_w) {
                    *v = momentum * *v - lr * (g * scale + lambda * w);
                }
                for (v, g) in vb.iter_mut().zip(&gb) {
                    *v = momentum * *v - lr * g * scale;
                }
                model.weights.iter_mut().zip(&vw).for_each(|(w, v)| *w += v);
                model.bias.iter_mut().zip(&vb).for_each(|(b, v)| *b += v);
                done += 1;
            }
        }
        model
    }

    fn standardise(&self, row: &[f32]) -> Vec<f32> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.inv_std)
            .map(|((v, m), s)| (v - m) * s)
            .collect()
    }

    /// The most likely class of each row of `x`.
    pub fn predict(&self, x: &[f32]) -> Vec<u32> {
        let mut logits = vec![0.0f32; self.classes];
        x.chunks(self.dim.max(1))
            .map(|row| {
                logits_into(
                    &self.weights,
                    &self.bias,
                    &self.standardise(row),
                    &mut logits,
                );
                argmax(&logits) as u32
            })
            .collect()
    }

    /// Share of rows of `x` predicted as their label.
    pub fn accuracy(&self, x: &[f32], labels: &[u32]) -> f64 {
        let predicted = self.predict(x);
        let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        right as f64 / labels.len().max(1) as f64
    }
}

fn logits_into(weights: &[f32], bias: &[f32], row: &[f32], out: &mut [f32]) {
    let dim = row.len();
    for (k, o) in out.iter_mut().enumerate() {
        let w = &weights[k * dim..(k + 1) * dim];
        *o = bias[k] + w.iter().zip(row).map(|(a, b)| a * b).sum::<f32>();
    }
}

fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 { (i, x) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Three Gaussian blobs in 5-D, one feature constant: separable but noisy.
    fn blobs(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres = [
            [2.0, 0.0, 0.0, 1.0],
            [0.0, 2.0, 0.0, 1.0],
            [0.0, 0.0, 2.0, 1.0],
        ];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 3;
            for &m in &centres[c] {
                x.push(m + rng.random_range(-1.0f32..1.0));
            }
            x.push(7.0);
            y.push(c as u32);
        }
        (x, y)
    }

    #[test]
    fn learns_separable_blobs_and_is_deterministic() {
        let (x, y) = blobs(300, 1);
        let (tx, ty) = blobs(300, 2);
        let cfg = SoftmaxConfig::default();
        let m = Softmax::fit(&x, 5, &y, 3, &cfg);
        let acc = m.accuracy(&tx, &ty);
        // centres 2√2 apart with uniform(-1,1) noise: a linear rule gets nearly all right
        assert!(acc > 0.95, "{acc}");
        let again = Softmax::fit(&x, 5, &y, 3, &cfg);
        assert_eq!(m.predict(&tx), again.predict(&tx));
    }

    #[test]
    fn predicts_by_argmax() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        let mut v = [1000.0, 1000.0];
        softmax_in_place(&mut v);
        assert_eq!(v, [0.5, 0.5]);
    }
}
