//! A small CNN classifier made of an autoencoder's encoder and a linear head, trained end to end
//! with cross-entropy on a few labels: the supervised test of what (stacked) unsupervised
//! pretraining buys. The same architecture, seed and data run twice — encoder initialised from
//! the trained run, or at random — so the accuracy difference is the pretraining alone.

use super::FeatureError;
use crate::data::ImageSet;
use crate::infer::batch_tensor;
use crate::model::{Autoencoder, Flow, Layer, weights_from_bytes};
use crate::spec::ValidSpec;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Encoder layers followed by a linear layer to class logits.
#[derive(Module, Debug)]
pub struct Classifier {
    pub encoder: Vec<Layer>,
    pub head: Linear,
}

impl Classifier {
    /// Class logits `[batch, classes]` of images `[batch, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let code = self
            .encoder
            .iter()
            .fold(Flow::Volume(x), |f, layer| layer.forward(f));
        self.head.forward(code.into_flat())
    }
}

/// How the classifier is trained.
#[derive(Debug, Clone)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            seed: 42,
        }
    }
}

/// Test accuracy of one classifier.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneResult {
    /// `pretrained` or `random`.
    pub init: &'static str,
    pub labels: usize,
    pub test: usize,
    pub accuracy: f64,
    pub seconds: f64,
}

/// Trains the classifier of `spec`'s encoder on `train` and scores it on `test`. With
/// `pretrained` (burnpack bytes of the whole autoencoder), the encoder starts from them.
pub fn finetune(
    spec: &ValidSpec,
    pretrained: Option<Vec<u8>>,
    train: &ImageSet,
    test: &ImageSet,
    classes: usize,
    cfg: &FinetuneConfig,
    base: &Device,
) -> Result<FinetuneResult, FeatureError> {
    let started = std::time::Instant::now();
    let (Some(train_labels), Some(test_labels)) = (&train.labels, &test.labels) else {
        return Err(FeatureError::Model(
            "fine-tuning needs labelled images".into(),
        ));
    };
    let device = base.clone().autodiff();
    device.seed(cfg.seed);
    let init = if pretrained.is_some() {
        "pretrained"
    } else {
        "random"
    };
    let mut autoencoder = Autoencoder::new(spec, &device);
    if let Some(bytes) = pretrained {
        weights_from_bytes(&mut autoencoder, bytes, "run")
            .map_err(|e| FeatureError::Model(e.to_string()))?;
    }
    // The head starts the same in both variants.
    device.seed(cfg.seed ^ 0x68656164);
    let head = LinearConfig::new(spec.bottleneck().len(), classes).init(&device);
    let mut model = Classifier {
        encoder: autoencoder.encoder,
        head,
    };
    let mut optimizer = AdamConfig::new().init();
    let cross_entropy = CrossEntropyLossConfig::new().init(&device);
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..cfg.epochs {
        order.sort_unstable();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed ^ epoch as u64));
        device.seed(cfg.seed.wrapping_add(epoch as u64));
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            let x = batch_tensor(train, chunk, &device);
            let y: Vec<i64> = chunk.iter().map(|&i| train_labels[i] as i64).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [chunk.len()]), &device);
            let loss = cross_entropy.forward(model.forward(x), y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(cfg.lr, model, grads);
        }
    }
    let trained = model.valid();
    let predicted = predict(&trained, test, 128, base)?;
    let right = predicted
        .iter()
        .zip(test_labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(FinetuneResult {
        init,
        labels: train.len(),
        test: test.len(),
        accuracy: right as f64 / test.len().max(1) as f64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The predicted class of every image of `set`.
pub fn predict(
    model: &Classifier,
    set: &ImageSet,
    batch: usize,
    device: &Device,
) -> Result<Vec<u32>, FeatureError> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::with_capacity(set.len());
    for chunk in indices.chunks(batch.max(1)) {
        let logits = model.forward(batch_tensor(set, chunk, device));
        let classes = logits.dims()[1];
        let values = logits
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| FeatureError::Model(format!("reading logits: {e:?}")))?;
        out.extend(
            values
                .chunks(classes.max(1))
                .map(|row| super::softmax::argmax(row) as u32),
        );
    }
    Ok(out)
}
