//! `cae export`: a run's weights as a PyTorch state dict in `.safetensors`, under the names and
//! layouts `torch.nn` uses, or the model as an ONNX graph in `.onnx` (see `cae::interop`); the
//! format follows the output's extension, and `--part encoder` exports the encoder alone.

use super::print_json;
use crate::args::{ExportArgs, Which};
use anyhow::bail;
use cae::Device;
use cae::interop::{
    ExportPart, export_encoder_state_dict, export_onnx, export_state_dict, onnx, torch_sequential,
};
use cae::model::{Autoencoder, load_weights};
use cae::output::{OutputFile, Overwrite};
use cae::run::RunDir;
use cae::spec::ValidSpec;

/// The formats `cae export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Safetensors,
    Onnx,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    // First: `-o RUN/best.bpk` is the run's weights before it is a wrong extension.
    let output = OutputFile::check(&a.output, Overwrite::from_force(a.force))?;
    // The format follows the extension: any other extension is an error, never a file of one
    // format under another's name (`-o model.pt`, `-o RUN/best.bpk`).
    let ext = a.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let format = match ext {
        "safetensors" => Format::Safetensors,
        "onnx" => Format::Onnx,
        "pt" | "pth" | "bin" => bail!(
            "{}: cae writes .safetensors only (or ONNX: -o FILE.onnx); PyTorch reads it with safetensors.torch.load_file (torch.save that to get a .pt)",
            a.output.display()
        ),
        other => bail!(
            "{}: unknown output format {}; cae export writes PyTorch .safetensors (-o FILE.safetensors) or ONNX (-o FILE.onnx)",
            a.output.display(),
            cae::quote::quote(other)
        ),
    };
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
    let part = ExportPart::from(a.part);
    // The whole file is built before anything is written, and written atomically: a model
    // that cannot be exported leaves no file behind.
    match format {
        Format::Safetensors => safetensors(&a, &output, &model, &spec, part),
        Format::Onnx => onnx_file(&a, &output, &model, &spec, part),
    }
}

fn safetensors(
    a: &ExportArgs,
    output: &OutputFile,
    model: &Autoencoder,
    spec: &ValidSpec,
    part: ExportPart,
) -> anyhow::Result<()> {
    let state = match part {
        ExportPart::Model => export_state_dict(model, spec)?,
        ExportPart::Encoder => export_encoder_state_dict(model, spec)?,
    };
    let bytes = state.to_safetensors()?;
    output.write(&bytes)?;
    let seq = torch_sequential(spec)?;
    let modules = match part {
        ExportPart::Model => seq.modules.len(),
        ExportPart::Encoder => seq.encoder_modules,
    };
    let params: usize = match part {
        ExportPart::Model => spec.total_params(),
        ExportPart::Encoder => spec.encoder.iter().map(|l| l.plan.params()).sum(),
    };
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "format": "safetensors", "part": part.to_string(),
            "tensors": state.tensors.len(), "params": params,
            "modules": modules, "input": spec.input.to_string(),
        }));
    }
    let what = match part {
        ExportPart::Model => format!(
            "PyTorch: an nn.Sequential of {modules} modules, its source in the metadata key cae.torch"
        ),
        ExportPart::Encoder => format!(
            "the encoder: the first {modules} modules of the nn.Sequential in the metadata key cae.torch"
        ),
    };
    println!(
        "wrote {} ({} tensors, {params} parameters; {what})",
        a.output.display(),
        state.tensors.len(),
    );
    Ok(())
}

fn onnx_file(
    a: &ExportArgs,
    output: &OutputFile,
    model: &Autoencoder,
    spec: &ValidSpec,
    part: ExportPart,
) -> anyhow::Result<()> {
    let exported = export_onnx(model, spec, part)?;
    let bytes = exported.to_bytes()?;
    output.write(&bytes)?;
    let nodes = exported.proto.graph.node.len();
    let initializers = exported.proto.graph.initializer.len();
    let i = spec.input;
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "format": "onnx", "part": part.to_string(),
            "opset": onnx::OPSET, "nodes": nodes, "initializers": initializers,
            "values": exported.values(), "input": i.to_string(),
        }));
    }
    println!(
        "wrote {} (ONNX opset {}, {nodes} nodes, {initializers} initializers; input '{}' [batch, {}, {}, {}] float32, output '{}': {})",
        a.output.display(),
        onnx::OPSET,
        onnx::INPUT,
        i.channels,
        i.height,
        i.width,
        onnx::OUTPUT,
        match part {
            ExportPart::Model => "the model's output",
            ExportPart::Encoder => "the code",
        }
    );
    Ok(())
}
