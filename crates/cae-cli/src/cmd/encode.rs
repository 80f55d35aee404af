//! `cae encode`: the latent codes of a data set, flattened to an N×D float32 `.npy`, with the
//! labels (int64) in `<stem>_labels.npy` beside it when the data has labels — the pair numpy,
//! scikit-learn and this tool's own `.npy` loader read.

use super::data::load_for_run;
use super::print_json;
use crate::args::DataArgs;
use crate::args::DeviceArg;
use cae::features::encode;
use cae::features::npy_write::{f32_npy, i64_npy};
use cae::output::{OutputFile, Overwrite};
use cae::run::RunDir;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The .npy file to write (labels go to <stem>_labels.npy beside it); new files unless
    /// --force, never a run's own files.
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "NPY"
    )]
    pub output: PathBuf,
    /// Replace existing output files (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Compute device.

    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: EncodeArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    let output = OutputFile::check(&a.output, overwrite)?;
    let stem = a
        .output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "features".into());
    // Checked now, though only written when the data has labels: no work is lost to it later.
    let labels_out = OutputFile::check(
        a.output.with_file_name(format!("{stem}_labels.npy")),
        overwrite,
    )?;
    let device = a.device.device()?;
    let run = RunDir::new(&a.run).load_model(&device)?;
    let set = load_for_run(&a.data, &run)?;
    let (codes, dim) = encode(&run.model, &set, a.batch_size, &device)?;
    let bytes = f32_npy(&codes, &[set.len(), dim]).map_err(anyhow::Error::msg)?;
    output.write(&bytes)?;
    let labels = match &set.labels {
        Some(labels) => {
            let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
            labels_out.write(&i64_npy(&values))?;
            Some(labels_out.path().to_path_buf())
        }
        None => None,
    };
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
