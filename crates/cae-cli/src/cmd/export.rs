//! `cae export`: a run's weights as a PyTorch state dict in `.safetensors`, under the names and
//! layouts `torch.nn` uses (see `cae::interop`), with the spec and input shape in its metadata.

use super::print_json;
use crate::args::{ExportArgs, Which};
use anyhow::bail;
use cae::Device;
use cae::interop::{export_state_dict, torch_sequential};
use cae::model::{Autoencoder, load_weights};
use cae::output::{OutputFile, Overwrite};
use cae::run::RunDir;

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    // First: `-o RUN/best.bpk` is the run's weights before it is a wrong extension.
    let output = OutputFile::check(&a.output, Overwrite::from_force(a.force))?;
    // The format follows the extension, and only one is written: any other extension is an
    // error, never a .safetensors file under another name (`-o model.onnx`, `-o RUN/best.bpk`).
    let ext = a.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "safetensors" => {}
        "pt" | "pth" | "bin" => bail!(
            "{}: cae writes .safetensors only; PyTorch reads it with safetensors.torch.load_file (torch.save that to get a .pt)",
            a.output.display()
        ),
        "onnx" => bail!(
            "{}: ONNX export is not available yet; cae export writes PyTorch .safetensors (-o FILE.safetensors), which torch.onnx.export can turn into ONNX",
            a.output.display()
        ),
        other => bail!(
            "{}: unknown output format {}; cae export writes PyTorch .safetensors: use -o FILE.safetensors",
            a.output.display(),
            cae::quote::quote(other)
        ),
    }
    let device = Device::flex();
    let dir = RunDir::new(&a.run);
    let config = dir.read_config()?;
    let spec = dir.spec(&config)?;
    let weights = match a.weights {
        Some(Which::Best) => dir.best(),
        Some(Which::Last) => dir.last(),
        None => dir.kept(&config),
    };
    if !weights.is_file() {
        bail!(
            "{}: the run has no weights yet ({}); it was stopped before its first epoch ended",
            a.run.display(),
            weights.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    let mut model = Autoencoder::new(&spec, &device);
    load_weights(&mut model, &weights)?;
    let state = export_state_dict(&model, &spec)?;
    let bytes = state.to_safetensors()?;
    output.write(&bytes)?;
    let modules = torch_sequential(&spec)?.modules.len();
    let params = spec.total_params();
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "tensors": state.tensors.len(), "params": params,
            "modules": modules, "input": spec.input.to_string(),
        }));
    }
    println!(
        "wrote {} ({} tensors, {params} parameters; PyTorch: an nn.Sequential of {modules} modules, its source in the metadata key cae.torch)",
        a.output.display(),
        state.tensors.len(),
    );
    Ok(())
}
