//! [`RunArgs`]: the run a command works on and the device to load it on — the opening every
//! command over a trained run shares, built once into a [`LoadedRun`] — and `cae info`'s flags.

use super::DeviceArg;
use cae::run::{LoadedRun, RunDir};
use clap::Args;
use std::path::PathBuf;

/// A trained run and the device to load it on.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A run directory made by `cae train`.
    #[arg(value_name = "RUN")]
    pub path: PathBuf,
    /// Compute device.
    // Listed last in --help, after the command's own flags, as it was before it was shared.
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex, display_order = 900)]
    pub device: DeviceArg,
}

impl RunArgs {
    /// The run, loaded on the device: config, checked spec and kept weights.
    pub fn load(&self) -> anyhow::Result<LoadedRun> {
        let device = self.device.device()?;
        Ok(RunDir::new(&self.path).load_model(&device)?)
    }
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A run directory made by `cae train` or `cae import`.
    pub run: PathBuf,
    #[arg(long)]
    pub json: bool,
}
