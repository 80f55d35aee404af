//! Loading the data a command was pointed at, with a trained run's shape as the default.

use crate::args::DataArgs;
use anyhow::Context;
use cae::data::ImageSet;
use cae::run::LoadedRun;

/// Loads `--data` for a trained run by the run's data rule ([`LoadedRun::data`]).
pub fn load_for_run(args: &DataArgs, run: &LoadedRun) -> anyhow::Result<ImageSet> {
    Ok(run.data(&args.required()?)?)
}

/// Parses `--param k=v` flags.
pub fn parse_params(params: &[String]) -> anyhow::Result<Vec<(String, f64)>> {
    params
        .iter()
        .map(|p| cae::spec::parse_param(p).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()
        .context("bad --param")
}
