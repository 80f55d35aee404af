//! Settings that depend on both the architecture and the objective, checked before a run
//! directory exists (so a refused run leaves nothing behind) and again before a resume: a
//! segmentation network trains on synthetic anomalies and a reconstruction does not,
//! probability losses need a sigmoid output, and an augmentation must fit the images, the loss
//! and the spec. [`ObjectiveError`] says which rule was broken.

use crate::data::ImageShape;
use crate::data::augment::{Augment, AugmentError};
use crate::run::config::{LossKind, TrainConfig};
use crate::spec::{Activation, ValidSpec};

/// A training objective the architecture cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// The augmentation does not fit the images (a crop larger than them, turns of a
    /// rectangle).
    #[error(transparent)]
    Augment(#[from] AugmentError),
    #[error(
        "--augment {augment} with --stacked: the later stages train on codes, which must not be cropped, turned or relit; pretrain without --augment"
    )]
    AugmentStacked { augment: Augment },
    #[error(
        "--augment {augment} with --loss bce: brightness and contrast can push target pixels above 1, where binary cross-entropy has no minimum; use --loss mse or leave them out"
    )]
    AugmentBce { augment: Augment },
    /// Crops of a spec with dense layers would change its weights' shapes.
    #[error(
        "--augment crop:{side} trains {spec} on {cropped}, but its dense layers are sized for {input}: crops need a fully convolutional spec",
        side = .cropped.height
    )]
    CropDense {
        spec: String,
        cropped: ImageShape,
        input: ImageShape,
    },
    #[error("--augment crop:{side}: {spec} does not fit {cropped} crops: {reason}", side = .cropped.height)]
    CropDoesNotFit {
        spec: String,
        cropped: ImageShape,
        reason: String,
    },
    #[error(
        "{spec} is a segmentation network (output_channels = {channels}): train it with --synthetic dark,texture,crack"
    )]
    NeedsSynthetic { spec: String, channels: usize },
    #[error(
        "--synthetic trains a segmentation network, but {spec} reconstructs its input: use --arch inspect (or a spec with output_channels = 1)"
    )]
    NeedsSegmentation { spec: String },
    #[error(
        "{spec} outputs {channels} channels; a segmentation network predicts one anomaly map: set output_channels = 1"
    )]
    MapChannels { spec: String, channels: usize },
    /// BCE and focal losses are defined on outputs in (0, 1) only.
    #[error(
        "loss {loss} needs outputs in (0, 1) but the decoder ends with {last}; end it with a sigmoid{}",
        if *.synthetic { "" } else { " or use --loss mse" }
    )]
    NeedsSigmoid {
        loss: LossKind,
        last: String,
        synthetic: bool,
    },
}

/// The augmentation must fit the images (a crop inside them, turns on square ones) and the
/// objective (no pixel values above 1 for BCE, no augmented codes in stacked stages), and with
/// a crop the model must run on it with the same weights it will score whole images with: a
/// fully convolutional spec.
fn check_augment(spec: &ValidSpec, t: &TrainConfig) -> Result<(), ObjectiveError> {
    let Some(augment) = t.augment else {
        return Ok(());
    };
    augment.check(spec.input)?;
    if t.stacked {
        return Err(ObjectiveError::AugmentStacked { augment });
    }
    if t.loss == LossKind::Bce && (augment.brightness.is_some() || augment.contrast.is_some()) {
        return Err(ObjectiveError::AugmentBce { augment });
    }
    if augment.crop.is_none() {
        return Ok(());
    }
    let cropped = augment.trained_shape(spec.input);
    match spec.at(cropped) {
        Ok(c) if c.total_params() == spec.total_params() => Ok(()),
        Ok(_) => Err(ObjectiveError::CropDense {
            spec: spec.spec.name.clone(),
            cropped,
            input: spec.input,
        }),
        Err(e) => Err(ObjectiveError::CropDoesNotFit {
            spec: spec.spec.name.clone(),
            cropped,
            reason: e.to_string(),
        }),
    }
}

/// Checks settings that depend on both the architecture and the objective: a segmentation
/// network trains on synthetic anomalies and a reconstruction does not; probability losses need
/// a sigmoid output; the augmentation fits ([`check_augment`]).
pub(super) fn check_objective(spec: &ValidSpec, t: &TrainConfig) -> Result<(), ObjectiveError> {
    check_augment(spec, t)?;
    let name = || spec.spec.name.clone();
    let channels = spec.output().channels;
    match (spec.is_segmentation(), t.synthetic.is_some()) {
        (true, false) => {
            return Err(ObjectiveError::NeedsSynthetic {
                spec: name(),
                channels,
            });
        }
        (false, true) => return Err(ObjectiveError::NeedsSegmentation { spec: name() }),
        (true, true) if channels != 1 => {
            return Err(ObjectiveError::MapChannels {
                spec: name(),
                channels,
            });
        }
        _ => {}
    }
    if !matches!(t.loss, LossKind::Bce | LossKind::Focal) {
        return Ok(());
    }
    match spec.output_activation() {
        Some(Activation::Sigmoid) => Ok(()),
        other => Err(ObjectiveError::NeedsSigmoid {
            loss: t.loss,
            last: other.unwrap_or_default().to_string(),
            synthetic: t.synthetic.is_some(),
        }),
    }
}
