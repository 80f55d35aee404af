//! `cae import`: a PyTorch state dict (`.safetensors`, or a `torch.save` checkpoint) for a given
//! spec, turned into a run directory that every later command takes like a trained one.

use super::data::parse_params;
use super::print_json;
use anyhow::bail;
use cae::Device;
use cae::data::ImageShape;
use cae::interop::{ImportRecord, StateDict, import_state_dict, metadata_key, write_imported_run};
use cae::output::{Overwrite, check_new_run};
use cae::spec::ArchSpec;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The weights: .safetensors, or a torch.save checkpoint (.pt/.pth) of a state dict.
    pub model: PathBuf,
    /// A preset name or TOML spec file (default: the spec a `cae export` file carries).
    #[arg(long)]
    pub arch: Option<String>,
    /// Set a spec parameter, e.g. --param latent=32 (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// Input shape CxHxW (default: the spec's own).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    /// Run directory to create: a new or empty folder, never a run.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Import into an --out folder that holds other files; they stay, and a file of a name a
    /// run writes (best.bpk, config.toml, ...) is refused even so.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: ImportArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    check_new_run(&a.out, overwrite)?;
    let origin = a.model.display().to_string();
    let (state, format) = StateDict::read(&a.model)?;
    let input = a
        .input
        .as_deref()
        .map(ImageShape::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let params = parse_params(&a.param)?;
    let spec = match (&a.arch, state.metadata.get(metadata_key::ARCH)) {
        (Some(arch), _) => ArchSpec::resolve(arch, &params, input)?,
        (None, Some(text)) => {
            let from = format!("{origin} ({} metadata)", metadata_key::ARCH);
            ArchSpec::resolve_text(&from, text, &params, input)?
        }
        (None, None) => bail!(
            "{origin}: no architecture: pass --arch (a preset or spec file); only files written by `cae export` carry their own"
        ),
    };
    let model = import_state_dict(&spec, &state, &origin, &Device::flex())?;
    let record = ImportRecord {
        source: origin.clone(),
        format: format.to_string(),
        tensors: state.tensors.len(),
        params: spec.total_params(),
    };
    write_imported_run(&a.out, &spec, &model, &record, overwrite)?;
    if a.json {
        return print_json(&serde_json::json!({
            "run": a.out, "source": origin, "format": record.format, "tensors": record.tensors,
            "params": record.params, "arch": spec.spec.name, "input": spec.input.to_string(),
        }));
    }
    println!(
        "imported {} tensors ({} parameters, {format}) into {} ({} on {})",
        record.tensors,
        record.params,
        a.out.display(),
        if spec.spec.name.is_empty() {
            "custom spec"
        } else {
            &spec.spec.name
        },
        spec.input
    );
    Ok(())
}
