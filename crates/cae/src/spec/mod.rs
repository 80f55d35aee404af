//! Architecture specs: what users write (TOML, or a shipped preset), how parameters are filled
//! in, and the checked [`ValidSpec`] that everything downstream (model builder, `cae arch`,
//! training) takes. A spec is checked once, against a concrete input shape; a spec that does not
//! fit is rejected with a message naming the layer and the shapes.

mod check;
mod cost;
mod field;
mod layer;
mod params;
mod preset;
pub mod shape;
mod table;

pub use check::{LayerPlan, Part, PlannedLayer, ValidSpec};
pub use layer::{Activation, LayerSpec, Padding, PaddingMode, Pair, Regularizer, UpsampleMode};
pub use preset::{PRESETS, Preset, preset};
pub use shape::Shape;

use crate::data::ImageShape;
use crate::quote::quote;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// An autoencoder as written by the user: encoder and decoder layer lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    /// Short name, shown in tables and run summaries.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The input this spec is meant for, e.g. `"1x28x28"`; data or `--input` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The channels the decoder gives back when they are not the input's: 1 for a segmentation
    /// network that predicts an anomaly map (`inspect`). Default: the input's channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_channels: Option<usize>,
    /// Parameter values the spec was resolved with (after `$name` substitution, kept as record).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, toml::Value>,
    pub encoder: Vec<LayerSpec>,
    pub decoder: Vec<LayerSpec>,
}

/// Where a new run's architecture comes from: a preset name or a spec file, or a spec written
/// inline as a table — a run's own `config.toml` holds its resolved spec that way, so
/// `cae train --config RUN/config.toml` trains the same model again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ArchSource {
    Named(String),
    Inline(Box<ArchSpec>),
}

impl ArchSource {
    /// Resolves the architecture for `input` (see [`ArchSpec::resolve`]). An inline spec has its
    /// parameters substituted already, so overrides are refused rather than ignored.
    pub fn resolve(
        &self,
        overrides: &[(String, f64)],
        input: Option<ImageShape>,
    ) -> Result<ValidSpec, SpecError> {
        match self {
            ArchSource::Named(name) => ArchSpec::resolve(name, overrides, input),
            ArchSource::Inline(spec) => {
                let origin = format!("the inline architecture {}", quote(&spec.name));
                if let Some((k, _)) = overrides.first() {
                    return Err(SpecError::Param {
                        origin,
                        message: format!(
                            "--param {}: an inline architecture has its parameters substituted already; edit its layers, or name a preset or spec file with --arch",
                            quote(k)
                        ),
                    });
                }
                let text = toml::to_string(spec.as_ref()).map_err(|e| SpecError::Parse {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
                ArchSpec::resolve_text(&origin, &text, &[], input)
            }
        }
    }

    /// A short name for the default run directory: the preset or file stem, or the spec's name.
    pub fn stem(&self) -> String {
        match self {
            ArchSource::Named(name) => Path::new(name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.clone()),
            ArchSource::Inline(spec) if !spec.name.is_empty() => spec.name.clone(),
            ArchSource::Inline(_) => "run".into(),
        }
    }
}

/// Why a spec could not be read or does not fit its input.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file could not be read.
    #[error("{path}: cannot read spec: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The TOML is malformed or names an unknown key/layer type.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// A `--param` or `$expr` problem.
    #[error("{origin}: {message}")]
    Param { origin: String, message: String },
    /// Neither the spec nor the caller gave an input shape.
    #[error(
        "{origin}: no input shape: pass --input CxHxW (e.g. 1x28x28) or set `input` in the spec"
    )]
    NoInput { origin: String },
    /// A layer's settings are invalid or its shapes do not fit.
    #[error("{0}")]
    Invalid(String),
    /// Neither a preset name nor an existing file.
    #[error("unknown architecture {}: not a preset ({presets}) and no such file{}", quote(.0), crate::suggest::did_you_mean(.0, preset::PRESETS.iter().map(|p| p.name)), presets = preset::names())]
    Unknown(String),
}

impl ArchSpec {
    /// Reads a preset name or a TOML file path, fills in parameters (`overrides` beside the
    /// spec's own `[params]`, plus the input's `channels`/`height`/`width`) and checks it.
    pub fn resolve(
        name_or_path: &str,
        overrides: &[(String, f64)],
        input: Option<ImageShape>,
    ) -> Result<ValidSpec, SpecError> {
        let (origin, text) = match preset(name_or_path) {
            Some(p) => (format!("preset {}", p.name), p.toml.to_string()),
            None => {
                let path = Path::new(name_or_path);
                if !path.exists() {
                    return Err(SpecError::Unknown(name_or_path.to_string()));
                }
                let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
                    path: name_or_path.to_string(),
                    source,
                })?;
                (name_or_path.to_string(), text)
            }
        };
        Self::resolve_text(&origin, &text, overrides, input)
    }

    /// Like [`ArchSpec::resolve`], from TOML text; `origin` names it in errors.
    pub fn resolve_text(
        origin: &str,
        text: &str,
        overrides: &[(String, f64)],
        input: Option<ImageShape>,
    ) -> Result<ValidSpec, SpecError> {
        let parse_err = |message: String| SpecError::Parse {
            origin: origin.to_string(),
            message,
        };
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| parse_err(crate::toml_error::one_line(&e)))?;
        let table = value
            .as_table_mut()
            .ok_or_else(|| parse_err("expected a TOML table".into()))?;

        let declared_input = match table.get("input") {
            Some(toml::Value::String(s)) => {
                Some(ImageShape::parse(s).map_err(|e| parse_err(format!("input: {e}")))?)
            }
            Some(_) => {
                return Err(parse_err(
                    "input: expected a string like \"1x28x28\"".into(),
                ));
            }
            None => None,
        };
        let input = input.or(declared_input).ok_or_else(|| SpecError::NoInput {
            origin: origin.to_string(),
        })?;

        let params = resolve_params(origin, table.get("params"), overrides, input)?;
        let param_err = |message: String| SpecError::Param {
            origin: origin.to_string(),
            message,
        };
        for part in ["encoder", "decoder"] {
            let written = table.get(part).cloned();
            if let Some(v) = table.get_mut(part) {
                params::substitute(v, &params).map_err(|e| param_err(format!("{part}: {e}")))?;
            }
            // Layer by layer first: serde's message for the whole spec names no layer.
            field::check_part(part, table.get(part), written.as_ref(), &params)
                .map_err(parse_err)?;
        }
        // Record the values actually used (declared defaults overridden by --param).
        if let Some(toml::Value::Table(declared)) = table.get_mut("params") {
            for (k, v) in declared.iter_mut() {
                if let Some(x) = params.get(k) {
                    *v = if x.fract() == 0.0 {
                        toml::Value::Integer(*x as i64)
                    } else {
                        toml::Value::Float(*x)
                    };
                }
            }
        }
        table.insert("input".into(), toml::Value::String(input.to_string()));

        let spec: ArchSpec = value
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(crate::toml_error::one_line(&e)))?;
        check::check(spec, input)
    }

    /// The spec as TOML, as stored in a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Declared `[params]` defaults, then `--param` overrides (which must name a declared one),
/// then the input's dimensions.
fn resolve_params(
    origin: &str,
    declared: Option<&toml::Value>,
    overrides: &[(String, f64)],
    input: ImageShape,
) -> Result<BTreeMap<String, f64>, SpecError> {
    let err = |message: String| SpecError::Param {
        origin: origin.to_string(),
        message,
    };
    let mut params = BTreeMap::new();
    if let Some(declared) = declared {
        let table = declared
            .as_table()
            .ok_or_else(|| err("[params] must be a table".into()))?;
        for (k, v) in table {
            if ["channels", "height", "width"].contains(&k.as_str()) {
                return Err(err(format!(
                    "parameter {k} is reserved: it is always the input's {k}; name yours differently",
                    k = quote(k)
                )));
            }
            let x = match v {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(f) => *f,
                _ => {
                    return Err(err(format!("parameter {k} must be a number", k = quote(k))));
                }
            };
            params.insert(k.clone(), x);
        }
    }
    for (k, v) in overrides {
        if !params.contains_key(k) {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(err(format!(
                "unknown parameter {k} (this spec's parameters: {known})",
                k = quote(k)
            )));
        }
        params.insert(k.clone(), *v);
    }
    params.insert("channels".into(), input.channels as f64);
    params.insert("height".into(), input.height as f64);
    params.insert("width".into(), input.width as f64);
    Ok(params)
}

/// Parses `--param name=value`; a malformed one is a [`SpecError::Param`] naming it.
pub fn parse_param(s: &str) -> Result<(String, f64), SpecError> {
    let refuse = |message: String| SpecError::Param {
        origin: format!("--param {}", quote(s)),
        message,
    };
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| refuse("expected name=value".into()))?;
    let text = v.trim();
    let v: f64 = text
        .parse()
        .map_err(|_| refuse(format!("{} is not a number", quote(text))))?;
    if !v.is_finite() {
        return Err(refuse(format!("{} is not a finite number", quote(text))));
    }
    Ok((k.trim().to_string(), v))
}

pub use table::{ArchSummary, LayerRow};

#[cfg(test)]
mod tests;
