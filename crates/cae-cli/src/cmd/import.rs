//! `cae import`: a PyTorch state dict (`.safetensors`, or a `torch.save` checkpoint) for a given
//! spec, turned into a run directory that every later command takes like a trained one.

use super::print_json;
use crate::args::{ImportArgs, parse_params};
use anyhow::bail;
use cae::Device;
use cae::data::ImageShape;
use cae::interop::{ImportRecord, StateDict, import_state_dict, metadata_key, write_imported_run};
use cae::output::{Overwrite, check_new_run};
use cae::spec::ArchSpec;

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
