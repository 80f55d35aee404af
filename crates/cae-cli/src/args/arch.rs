//! The flags of `cae arch` and `cae bench`, which take an architecture rather than a run, and
//! `--param NAME=VALUE`, which every command that resolves a spec takes.

use super::DeviceArg;
use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct ArchArgs {
    /// A preset name, a TOML spec file or a run directory.
    #[arg(required_unless_present = "list")]
    pub arch: Option<String>,
    /// Input shape CxHxW (default: the spec's own).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// List the presets.
    #[arg(long)]
    pub list: bool,
    /// Print the resolved spec as TOML instead of the table.
    #[arg(long)]
    pub toml: bool,
    /// Print the PyTorch nn.Sequential the spec stands for (its names are `cae export`'s).
    #[arg(long, conflicts_with = "toml")]
    pub torch: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A preset name or a TOML spec file.
    pub arch: String,
    /// Input shape CxHxW (default: the spec's own).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Timed steps per phase (after warm-up).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Compute device.

    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

/// Parses `--param k=v` flags.
pub fn parse_params(params: &[String]) -> anyhow::Result<Vec<(String, f64)>> {
    params
        .iter()
        .map(|p| cae::spec::parse_param(p).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<_>>()
        .context("bad --param")
}
