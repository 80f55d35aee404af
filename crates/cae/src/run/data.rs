//! The data rule: how a run's images are loaded after training, in one place, so that every
//! command, the server and the benches read a run's data the same way. A run's config records
//! what its training loader did (`--channels`, `--resize`, `--normalize`, the seed); a
//! [`DataRequest`] says what a command was pointed at and which of those settings it overrides;
//! [`LoadedRun::data`] turns the two into images, and `crate::anomaly::run_data` into images
//! with their truth, or, with no source, into the run's own held-out partitions
//! ([`Partition`]). The server, which takes one uploaded image at a time, reads the same rule
//! through [`ImageRule`].
//!
//! One channel rule for every command and the server: colour is converted only as the run's
//! `--channels` (or the command's own `--channels`) says, and images with another channel
//! count than the model's are an error that names the flag to pass — never a silent
//! conversion. Sizes differ in one place only: `anomaly::run_data::anomaly_data` scores other sizes
//! at their own size when the run was trained without `--resize` (whole or in tiles).

use super::LoadedRun;
use super::config::{ConfigError, RunConfig, parse_hw};
use crate::data::{self, DataError, ImageSet, ImageShape, LoadOptions, Normalize, Shard};
use crate::infer::check_fits;

/// Class-folder names taken as the normal class when none is named.
pub const DEFAULT_NORMAL_NAMES: [&str; 2] = ["good", "normal"];

/// Why a run's images could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RunDataError {
    /// The run's recorded `resize` disagrees with its model's input.
    #[error(
        "the run resized to {height}x{width} but its model takes {input}; the config is inconsistent"
    )]
    ResizeDisagrees {
        height: usize,
        width: usize,
        input: crate::data::ImageShape,
    },
    /// A recorded setting does not parse (its input shape, its `resize`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No source was given, and only the anomaly commands fall back on the run's partitions.
    #[error("--data is required (a path or builtin:shapes)")]
    NoSource,
    /// The source could not be loaded.
    #[error(transparent)]
    Load(#[from] DataError),
    /// The images do not fit the model; the message names the conversion to ask for.
    #[error(transparent)]
    Fit(#[from] crate::infer::InferError),
    /// The source holds no image.
    #[error("{origin}: no images")]
    Empty { origin: String },
}

/// Which held-out part of a run's own data to use when no source is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Validation images: threshold fitting.
    Validation,
    /// Test images: evaluation and scoring.
    Test,
    /// The normal validation images, then every other one again with a painted defect
    /// (`crate::anomaly::painted`): training's `val_auroc` set, with masks, for choosing score
    /// settings without real defects.
    Painted,
}

/// What a command asks of a run's data: a source (or none, for the run's own partitions) and
/// the settings it overrides; everything left `None` is the run's own.
#[derive(Debug, Clone, Default)]
pub struct DataRequest {
    /// A data source; `None` means the run's own held-out partition.
    pub source: Option<String>,
    /// The normal class of labelled data (default: the run's, then a `good`/`normal` folder).
    pub normal_class: Option<String>,
    /// Force 1 or 3 channels (default: see the module docs).
    pub channels: Option<usize>,
    /// Resize to (height, width) (default: the run's `resize`).
    pub resize: Option<(usize, usize)>,
    /// Keep only these labels.
    pub classes: Option<Vec<u32>>,
    /// Use only the first N images.
    pub limit: Option<usize>,
    /// Keep only this block of the images.
    pub shard: Option<Shard>,
    /// Of the shard, only these positions ([`crate::data::LoadOptions::window`]).
    pub window: Option<std::ops::Range<usize>>,
}

impl DataRequest {
    /// A request for `source` with the run's own settings.
    pub fn source(source: impl Into<String>) -> DataRequest {
        DataRequest {
            source: Some(source.into()),
            ..DataRequest::default()
        }
    }

    /// The loader options for `config`'s run, channels defaulting to `channels`.
    pub(crate) fn options(
        &self,
        config: &RunConfig,
        channels: Option<usize>,
    ) -> Result<LoadOptions, ConfigError> {
        let resize = match self.resize {
            Some(hw) => Some(hw),
            None => config.data.resize.as_deref().map(parse_hw).transpose()?,
        };
        Ok(LoadOptions {
            channels: self.channels.or(channels),
            resize,
            classes: self.classes.clone(),
            limit: self.limit,
            normalize: config.data.normalize,
            seed: config.train.seed,
            shard: self.shard,
            window: self.window.clone(),
        })
    }
}

/// The rule for single images (the server's uploads), read from a run's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRule {
    /// What the model takes.
    pub input: ImageShape,
    /// True when the run was trained with `--resize`: other sizes are resized to `input`.
    pub resize: bool,
    /// The channel count the run forced with `--channels`.
    pub channels: Option<usize>,
    /// The run's per-image brightness normalisation, applied last.
    pub normalize: Option<Normalize>,
}

impl ImageRule {
    /// The rule of `config`; a `resize` that contradicts the input is an error.
    pub fn of(config: &RunConfig) -> Result<ImageRule, RunDataError> {
        let input = config.input_shape()?;
        let resize = match config.data.resize.as_deref() {
            Some(hw) => {
                let (h, w) = parse_hw(hw)?;
                if (h, w) != (input.height, input.width) {
                    return Err(RunDataError::ResizeDisagrees {
                        height: h,
                        width: w,
                        input,
                    });
                }
                true
            }
            None => false,
        };
        Ok(ImageRule {
            input,
            resize,
            channels: config.data.channels,
            normalize: config.data.normalize,
        })
    }
}

impl LoadedRun {
    /// The images of `request.source` for this run's model: channels and size default to the
    /// conversions the run was trained with (`--channels`, `--resize` in its config), never to
    /// a silent conversion of images that do not fit: those are an error that names the flag
    /// to pass.
    pub fn data(&self, request: &DataRequest) -> Result<ImageSet, RunDataError> {
        let Some(source) = &request.source else {
            return Err(RunDataError::NoSource);
        };
        let input = self.config.input_shape()?;
        let options = request.options(&self.config, self.config.data.channels)?;
        let set = data::load(source, &options)?;
        check_fits(set.shape, input, source)?;
        if set.is_empty() {
            return Err(RunDataError::Empty {
                origin: source.clone(),
            });
        }
        Ok(set)
    }

    /// How many images `request.source` lists when it is an image folder that can be read a
    /// block at a time (`request.window`, [`data::listed_images`]), so that a command's memory
    /// is one block's whatever the folder's size; `None` for every other source (and none),
    /// which is read whole.
    pub fn listed(&self, request: &DataRequest) -> Result<Option<usize>, RunDataError> {
        let Some(source) = &request.source else {
            return Ok(None);
        };
        let options = request.options(&self.config, self.config.data.channels)?;
        Ok(data::listed_images(source, &options)?)
    }

    /// [`LoadedRun::data`] a block at a time: an image folder's images `block` at a time, in
    /// order, so that memory is one block's whatever the folder's size; any other source
    /// whole, in one call.
    pub fn data_blocks<E: From<RunDataError>>(
        &self,
        request: &DataRequest,
        block: usize,
        mut each: impl FnMut(ImageSet) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(total) = self.listed(request)? else {
            return each(self.data(request)?);
        };
        let block = block.max(1);
        for start in (0..total).step_by(block) {
            each(self.data(&DataRequest {
                window: Some(start..start + block),
                ..request.clone()
            })?)?;
        }
        Ok(())
    }
}
