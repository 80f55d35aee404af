//! Stacked convolutional autoencoders (Masci et al. 2011): greedy layer-wise pretraining of the
//! encoder before the whole autoencoder is fine-tuned end to end.
//!
//! The encoder is cut into stages, one per conv layer (with the pooling, normalisation, dropout
//! and activation layers after it). Stage 1 is trained as a small CAE of its own on the images,
//! with a decoder of one conv (after a nearest upsampling when the stage shrinks its input);
//! its encoder is then frozen, the training images are encoded with it, and stage 2 is trained
//! on those codes, and so on. Encoder layers from the first dense (or other non-convolutional)
//! layer on are left to the fine-tuning. Each stage is a complete run in `RUN/stack/stage-N/`
//! (weights, checkpoint, metrics), so a stacked run killed during pretraining resumes there.

use super::checkpoint::Checkpoint;
use super::error::TrainError;
use super::fit::{Observer, fit};
use crate::atomic::write_atomic;
use crate::data::{ImageSet, ImageShape};
use crate::infer::batch_tensor;
use crate::model::{Autoencoder, load_weights, weights_to_bytes};
use crate::run::RunDir;
use crate::run::config::{LossKind, RunConfig};
use crate::run::{FitData, TrainImages};
use crate::spec::{ArchSpec, LayerSpec, Shape, ValidSpec};
use burn::tensor::Device;
use std::ops::Range;

/// One pretraining stage: encoder layers `layers` (0-based indices into the spec's encoder list)
/// with their own small decoder, checked on the stage's input.
#[derive(Debug, Clone)]
pub struct Stage {
    pub layers: Range<usize>,
    pub spec: ValidSpec,
}

/// Why a spec cannot be trained greedily stage by stage (`--stacked`).
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "--stacked pretrains conv layers one by one, but '{spec}' starts with a zscore layer, fitted to the training images instead; train it without --stacked"
    )]
    Zscore { spec: String },
    #[error(
        "--stacked pretrains conv layers, but the encoder of '{spec}' does not start with any; use a convolutional encoder (e.g. --arch keras-denoise)"
    )]
    NoConv { spec: String },
    /// Later stages train on the codes of every training image, held in memory.
    #[error(
        "--stacked trains each later stage on the codes of all training images, in memory; train without --stream"
    )]
    Streamed,
    /// A stage's own CAE could not be built.
    #[error("stage {number}: {reason}")]
    Stage { number: usize, reason: String },
    /// A stage's codes (the next stage's input) could not be computed.
    #[error("stage codes: {0}")]
    Codes(String),
}

/// Cuts the encoder of `spec` into stages and gives each its own decoder.
pub fn plan_stages(spec: &ValidSpec) -> Result<Vec<Stage>, StackError> {
    if spec.zscore().is_some() {
        return Err(StackError::Zscore {
            spec: spec.spec.name.clone(),
        });
    }
    let layers = &spec.spec.encoder;
    let mut starts = Vec::new();
    let mut end = 0;
    for (i, l) in layers.iter().enumerate() {
        match l {
            LayerSpec::Conv { .. } => starts.push(i),
            LayerSpec::MaxPool { .. }
            | LayerSpec::AvgPool { .. }
            | LayerSpec::BatchNorm {}
            | LayerSpec::Dropout { .. }
            | LayerSpec::Activation { .. }
            | LayerSpec::Save { .. } => {}
            _ => break,
        }
        end = i + 1;
    }
    if starts.is_empty() {
        return Err(StackError::NoConv {
            spec: spec.spec.name.clone(),
        });
    }
    starts[0] = 0; // layers before the first conv belong to the first stage
    let mut stages = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let stop = starts.get(k + 1).copied().unwrap_or(end);
        stages.push(stage(spec, start..stop, k + 1)?);
    }
    Ok(stages)
}

/// The planned encoder layer made from the user's layer `index` (0-based).
fn planned(spec: &ValidSpec, index: usize) -> Option<(usize, &crate::spec::PlannedLayer)> {
    spec.encoder
        .iter()
        .enumerate()
        .find(|(_, l)| l.index == Some(index + 1))
}

fn volume(shape: Shape) -> Option<(usize, usize, usize)> {
    match shape {
        Shape::Volume { c, h, w } => Some((c, h, w)),
        Shape::Vector(_) => None,
    }
}

/// Builds and checks the stage CAE of encoder layers `range`.
fn stage(spec: &ValidSpec, range: Range<usize>, number: usize) -> Result<Stage, StackError> {
    let refuse = |reason: String| StackError::Stage { number, reason };
    let first = planned(spec, range.start).map(|(_, l)| l);
    let last = planned(spec, range.end - 1).map(|(_, l)| l);
    let (Some(first), Some(last)) = (first, last) else {
        return Err(refuse("encoder layers not found in the plan".into()));
    };
    let (Some((c, h, w)), Some((_, oh, ow))) = (volume(first.input), volume(last.output)) else {
        return Err(refuse("expects image volumes".into()));
    };
    let kernel = spec.spec.encoder[range.clone()]
        .iter()
        .find_map(|l| match l {
            LayerSpec::Conv { kernel, .. } => Some(kernel.hw()),
            _ => None,
        })
        .unwrap_or([3, 3]);
    let int = |v: usize| toml::Value::Integer(v as i64);
    let pair = |p: [usize; 2]| toml::Value::Array(vec![int(p[0]), int(p[1])]);
    let table = |entries: Vec<(&str, toml::Value)>| {
        toml::Value::Table(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    };
    let text = |s: &str| toml::Value::String(s.to_string());
    let mut decoder = Vec::new();
    let conv_back = if oh >= h && ow >= w {
        // grown (full padding) or kept: a valid conv that removes the growth, or a same conv
        let k = if oh == h && ow == w {
            kernel
        } else {
            [oh - h + 1, ow - w + 1]
        };
        let padding = if oh == h && ow == w { "same" } else { "valid" };
        (k, padding)
    } else if oh <= h && ow <= w && h % oh == 0 && w % ow == 0 {
        decoder.push(table(vec![
            ("type", text("upsample")),
            ("factor", pair([h / oh, w / ow])),
        ]));
        (kernel, "same")
    } else {
        return Err(refuse(format!(
            "maps {c}x{h}x{w} to {}; --stacked needs stages that shrink by whole factors (use 'same' padding and sides divisible by the pooling)",
            last.output
        )));
    };
    decoder.push(table(vec![
        ("type", text("conv")),
        ("filters", int(c)),
        ("kernel", pair(conv_back.0)),
        ("padding", text(conv_back.1)),
        ("activation", text("identity")),
    ]));
    let arch = ArchSpec {
        name: format!("{}-stage-{number}", spec.spec.name),
        description: format!(
            "encoder layers {}..{} of {}, pretrained as a CAE of their own",
            range.start + 1,
            range.end,
            spec.spec.name
        ),
        input: None,
        output_channels: None,
        params: Default::default(),
        encoder: spec.spec.encoder[range.clone()].to_vec(),
        decoder: vec![],
    };
    let mut value = toml::Value::try_from(&arch).map_err(|e| refuse(e.to_string()))?;
    if let Some(t) = value.as_table_mut() {
        t.insert("decoder".into(), toml::Value::Array(decoder));
    }
    let input = ImageShape {
        channels: c,
        height: h,
        width: w,
    };
    let toml_text = toml::to_string(&value).map_err(|e| refuse(e.to_string()))?;
    let valid = ArchSpec::resolve_text(&arch.name, &toml_text, &[], Some(input))
        .map_err(|e| refuse(e.to_string()))?;
    Ok(Stage {
        layers: range,
        spec: valid,
    })
}

/// The codes of `set` under a stage's encoder, as a new "image" set (channels = filters).
fn encode_set(
    model: &Autoencoder,
    shape: Shape,
    set: &ImageSet,
    batch: usize,
    device: &Device,
) -> Result<ImageSet, StackError> {
    let Some((c, h, w)) = volume(shape) else {
        return Err(StackError::Codes("they must be volumes".into()));
    };
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut pixels = Vec::with_capacity(set.len() * c * h * w);
    for chunk in indices.chunks(batch.max(1)) {
        let code = model.encode(batch_tensor(set, chunk, device)).into_flat();
        let values = code
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| StackError::Codes(format!("{e:?}")))?;
        pixels.extend(values);
    }
    Ok(ImageSet {
        shape: ImageShape {
            channels: c,
            height: h,
            width: w,
        },
        pixels,
        labels: set.labels.clone(),
        class_names: set.class_names.clone(),
        origins: set.origins.clone(),
    })
}

/// Pretrains the encoder of `spec` stage by stage on `data` and returns the weights of the full
/// autoencoder with the pretrained encoder layers and a fresh (seeded) decoder.
pub fn pretrain(
    run: &RunDir,
    config: &RunConfig,
    spec: &ValidSpec,
    data: &FitData<TrainImages>,
    observer: &mut dyn Observer,
) -> Result<Vec<u8>, TrainError> {
    let (TrainImages::Memory(train), TrainImages::Memory(val)) = (&data.train, &data.val) else {
        return Err(StackError::Streamed.into());
    };
    let stages = plan_stages(spec)?;
    let t = &config.train;
    let base = t.device.device()?;
    base.seed(t.seed);
    let mut full = Autoencoder::new(spec, &base);
    let (mut train, mut val) = (train.clone(), val.clone());
    for (k, stage) in stages.iter().enumerate() {
        let number = k + 1;
        observer.stage(number, stages.len() + 1, &stage.spec.spec.description);
        let dir = RunDir::new(run.root.join("stack").join(format!("stage-{number}")));
        std::fs::create_dir_all(&dir.root).map_err(|source| TrainError::Write {
            path: dir.root.display().to_string(),
            source,
        })?;
        let mut stage_config = config.clone();
        stage_config.arch = stage.spec.spec.clone();
        stage_config.input = stage.spec.input.to_string();
        stage_config.train.stacked = false;
        stage_config.train.epochs = t.stack_epochs.unwrap_or(t.epochs);
        // Only the first stage sees images: later stages reconstruct unbounded codes.
        if k > 0 {
            stage_config.train.noise = None;
        }
        if k > 0 || matches!(t.loss, LossKind::Bce) {
            stage_config.train.loss = LossKind::Mse;
        }
        let text = toml::to_string(&stage_config).map_err(|source| TrainError::ConfigText {
            what: "stage config",
            source,
        })?;
        write_atomic(&dir.config(), text.as_bytes()).map_err(|source| TrainError::Write {
            path: dir.config().display().to_string(),
            source,
        })?;
        let resume = if dir.checkpoint().is_file() {
            Some(Checkpoint::load(&dir.checkpoint())?)
        } else {
            None
        };
        let stage_data = FitData {
            train: TrainImages::Memory(train.clone()),
            val: TrainImages::Memory(val.clone()),
            monitors: vec![],
        };
        fit(
            &dir,
            &stage_config,
            &stage.spec,
            &stage_data,
            resume,
            observer,
        )?;

        let mut model = Autoencoder::new(&stage.spec, &base);
        load_weights(&mut model, &dir.best())?;
        // Copy the trained layers into the full encoder, at the places they came from.
        for (j, index) in stage.layers.clone().enumerate() {
            if let (Some((pos, _)), Some(layer)) = (planned(spec, index), model.encoder.get(j)) {
                full.encoder[pos] = layer.clone();
            }
        }
        if k + 1 < stages.len() {
            let shape = stage.spec.bottleneck();
            train = encode_set(&model, shape, &train, t.batch_size, &base)?;
            if !val.is_empty() {
                val = encode_set(&model, shape, &val, t.batch_size, &base)?;
            }
        }
    }
    observer.stage(
        stages.len() + 1,
        stages.len() + 1,
        "fine-tuning the whole autoencoder end to end from the pretrained encoder",
    );
    Ok(weights_to_bytes(&full)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LayerPlan;

    #[test]
    fn stages_follow_the_conv_layers() {
        let spec = ArchSpec::resolve("keras-denoise", &[], None).unwrap();
        let stages = plan_stages(&spec).unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].layers, 0..2);
        assert_eq!(stages[1].layers, 2..4);
        assert_eq!(stages[0].spec.input.to_string(), "1x28x28");
        assert_eq!(stages[1].spec.input.to_string(), "32x14x14");
        assert_eq!(stages[1].spec.bottleneck().to_string(), "32x7x7");
        // stage decoders come back to their stage's input
        let kinds: Vec<&str> = stages[1]
            .spec
            .decoder
            .iter()
            .map(|l| l.plan.kind())
            .collect();
        assert_eq!(kinds, ["upsample", "conv"]);

        let galeone = ArchSpec::resolve("galeone", &[], None).unwrap();
        let s = plan_stages(&galeone).unwrap();
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s[0].spec.decoder[0].plan,
            LayerPlan::Conv { kernel: [7, 7], .. }
        ));

        // dense-latent: the dense code is left to fine-tuning
        let dense = ArchSpec::resolve("dense-latent", &[], None).unwrap();
        let s = plan_stages(&dense).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].layers, 4..5);
    }
}
