//! PyTorch interop: a trained model's weights under PyTorch's parameter names and layouts
//! (`cae export`), and PyTorch-trained weights turned into a run directory (`cae import`); and
//! the model as an ONNX graph ([`onnx`], `cae export -o model.onnx`).
//!
//! # Naming
//! A spec stands for one `torch.nn.Sequential`: the encoder's modules, then the decoder's, each
//! planned layer giving the modules listed in [`torch_module`] (a conv is `Conv2d` followed by
//! its activation unless that is `identity`; a dense layer after a volume gets an `nn.Flatten`
//! before it; and so on). Parameters are named as that sequential's `state_dict()` names them:
//! `{module index}.weight`, `.bias`, and for batch norm `.running_mean`, `.running_var`,
//! `.num_batches_tracked`. `cae arch SPEC --torch` prints the sequential, and every export
//! carries it in its metadata.
//!
//! # Files
//! Exports are `.safetensors` with metadata `cae.arch` (the resolved spec, TOML), `cae.input`
//! (`CxHxW`), `cae.encoder_modules` (`net[:n]` is the encoder), `cae.torch` (the Python source
//! of the sequential) and `cae.version`; `--part encoder` keeps the encoder's tensors alone and
//! adds `cae.part` = `encoder`. Imports read `.safetensors` and `torch.save`
//! checkpoints (`.pt`/`.pth`).

mod convert;
mod imported_run;
pub mod onnx;
mod state_dict;
pub mod torch_module;

pub use convert::{export_encoder_state_dict, export_state_dict, import_state_dict};
pub use imported_run::{ImportRecord, write_imported_run};
pub use onnx::{ExportPart, OnnxModel, export_onnx};
pub use state_dict::{FileFormat, StateDict, StateTensor, Values};
pub use torch_module::{TorchModule, TorchSequential, torch_sequential};

/// Metadata keys of an exported `.safetensors` file.
pub mod metadata_key {
    /// The resolved architecture spec, as TOML.
    pub const ARCH: &str = "cae.arch";
    /// The input shape, `CxHxW`.
    pub const INPUT: &str = "cae.input";
    /// How many of the sequential's first modules make the encoder.
    pub const ENCODER_MODULES: &str = "cae.encoder_modules";
    /// Python source of the `nn.Sequential`.
    pub const TORCH: &str = "cae.torch";
    /// The cae version that wrote the file.
    pub const VERSION: &str = "cae.version";
    /// `encoder` in a file of the encoder's tensors alone (`cae export --part encoder`).
    pub const PART: &str = "cae.part";
}

/// Why weights could not be exported or imported.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The file is not what it claims to be (truncated, garbled, empty).
    #[error("{path}: not a valid {format}: {message}")]
    Corrupt {
        path: String,
        format: &'static str,
        message: String,
    },
    /// A tensor of a type weights never have (or an integer one where floats belong).
    #[error("{origin}: tensor '{key}' has dtype {dtype}; weights must be floating point")]
    Dtype {
        origin: String,
        key: String,
        dtype: String,
    },
    /// The file's names do not match the spec's.
    #[error("{origin}: {}", keys_message(missing, unexpected))]
    Keys {
        origin: String,
        /// `'name' [shape]` of each expected tensor the file lacks.
        missing: Vec<String>,
        /// `'name'` of each tensor the spec has no place for.
        unexpected: Vec<String>,
    },
    /// A tensor has the wrong shape for its layer.
    #[error("{0}")]
    Shape(Box<ShapeMismatch>),
    /// A tensor holds NaN or infinite values.
    #[error("{origin}: '{key}' ({layer}) holds NaN or infinite values")]
    NonFinite {
        origin: String,
        key: String,
        layer: String,
    },
    /// The spec has a layer PyTorch has no module for.
    #[error("{layer}: no PyTorch equivalent: {reason}")]
    Unsupported { layer: String, reason: String },
    /// The output folder may not become a run (it holds one, or files of the user's).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// Another process writes into the run.
    #[error(transparent)]
    Lock(#[from] crate::run::LockError),
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    /// Reading the model's own tensors failed (a bug, not bad input).
    #[error("{0}")]
    Tensor(String),
}

/// A tensor whose shape does not fit its layer.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: '{key}' ({layer}) has shape {given:?}, expected {expected:?}{hint}")]
pub struct ShapeMismatch {
    pub origin: String,
    pub key: String,
    /// The planned layer, e.g. `encoder layer 2 (conv)`.
    pub layer: String,
    pub expected: Vec<usize>,
    pub given: Vec<usize>,
    /// A guess at the cause, or empty.
    pub hint: &'static str,
}

/// `missing 2 keys: '0.weight' [16, 1, 3, 3], ...; unexpected 1 key: 'fc.weight'` with a hint.
fn keys_message(missing: &[String], unexpected: &[String]) -> String {
    let list = |what: &str, keys: &[String]| {
        let shown: Vec<&str> = keys.iter().take(4).map(String::as_str).collect();
        let more = match keys.len() {
            n if n > 4 => format!(", and {} more", n - 4),
            _ => String::new(),
        };
        let s = if keys.len() == 1 { "" } else { "s" };
        format!("{what} {} key{s}: {}{more}", keys.len(), shown.join(", "))
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(list("missing", missing));
    }
    if !unexpected.is_empty() {
        parts.push(list("unexpected", unexpected));
    }
    format!(
        "{} (cae names weights as one nn.Sequential: '0.weight', '0.bias', ...; `cae arch SPEC --torch` shows it)",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests;
