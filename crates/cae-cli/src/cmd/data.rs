//! Loading the data a command was pointed at, with a trained run's shape as the default.

use crate::args::DataArgs;
use anyhow::{Context, bail};
use cae::data::{ImageSet, LoadOptions, load};
use cae::infer::check_fits;
use cae::train::RunConfig;
use cae::train::config::parse_hw;

/// Loads `--data` for a trained run: channels and size default to the conversions the run was
/// trained with (`--channels`, `--resize` in its config), never to a silent conversion of images
/// that do not fit: those are an error that names the flag to pass.
pub fn load_for_run(args: &DataArgs, config: &RunConfig) -> anyhow::Result<ImageSet> {
    let Some(source) = &args.data else {
        bail!("--data is required (a path or builtin:shapes)")
    };
    let input = config.input_shape().map_err(anyhow::Error::msg)?;
    let resize = match &args.resize {
        Some(s) => Some(parse_hw(s).map_err(anyhow::Error::msg)?),
        None => config
            .data
            .resize
            .as_deref()
            .map(parse_hw)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let options = LoadOptions {
        channels: args.channels.or(config.data.channels),
        resize,
        classes: args.classes.clone(),
        limit: args.limit,
        normalize: config.data.normalize,
        seed: config.train.seed,
        shard: None,
    };
    let set = load(source, &options).map_err(anyhow::Error::msg)?;
    check_fits(set.shape, input, source).map_err(anyhow::Error::msg)?;
    if set.is_empty() {
        bail!("{source}: no images");
    }
    Ok(set)
}

/// Parses `--param k=v` flags.
pub fn parse_params(params: &[String]) -> anyhow::Result<Vec<(String, f64)>> {
    params
        .iter()
        .map(|p| cae::spec::parse_param(p).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()
        .context("bad --param")
}
