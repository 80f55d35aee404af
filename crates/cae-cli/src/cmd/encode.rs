//! `cae encode`: the latent codes of a data set, flattened to an N×D float32 `.npy`, with the
//! labels (int64) in `<stem>_labels.npy` beside it when the data has labels — the pair numpy,
//! scikit-learn and this tool's own `.npy` loader read.

use super::data::load_for_run;
use super::print_json;
use crate::args::DataArgs;
use crate::args::DeviceArg;
use anyhow::Context;
use cae::atomic::write_atomic;
use cae::features::encode;
use cae::features::npy_write::{f32_npy, i64_npy};
use cae::run_dir::RunDir;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The .npy file to write (labels go to <stem>_labels.npy beside it).
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "NPY"
    )]
    pub output: PathBuf,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Compute device.

    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: EncodeArgs) -> anyhow::Result<()> {
    let device = a.device.device()?;
    let run = RunDir::new(&a.run).load_model(&device)?;
    let set = load_for_run(&a.data, &run.config)?;
    let (codes, dim) = encode(&run.model, &set, a.batch_size, &device)?;
    let bytes = f32_npy(&codes, &[set.len(), dim]).map_err(anyhow::Error::msg)?;
    write_atomic(&a.output, &bytes)
        .with_context(|| format!("{}: cannot write", a.output.display()))?;
    let labels_path = set.labels.as_ref().map(|labels| {
        let stem = a
            .output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "features".into());
        let path = a.output.with_file_name(format!("{stem}_labels.npy"));
        let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        (path, i64_npy(&values))
    });
    if let Some((path, bytes)) = &labels_path {
        write_atomic(path, bytes).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let labels = labels_path.map(|(p, _)| p);
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "labels": labels, "images": set.len(), "dim": dim,
        }));
    }
    println!(
        "wrote {} ({} codes of {dim} values){}",
        a.output.display(),
        set.len(),
        labels
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_else(|| " (the data has no labels)".into())
    );
    Ok(())
}
