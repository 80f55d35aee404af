//! The model's weights ⇄ a PyTorch state dict. Names come from [`torch_sequential`]; layouts
//! are converted where the two frameworks differ: Burn's `Linear` stores its weight as
//! `[in, out]`, PyTorch's as `[out, in]`. Convolution weights (`Conv2d` `[out, in, kh, kw]`,
//! `ConvTranspose2d` `[in, out, kh, kw]`) and batch-norm vectors are laid out the same in both,
//! and both flatten volumes channel-major, so a `Linear` after a flatten needs nothing else.

use super::state_dict::{StateDict, StateTensor, Values};
use super::torch_module::{describe, torch_sequential};
use super::{InteropError, ShapeMismatch, metadata_key};
use crate::model::{Autoencoder, Layer};
use crate::spec::ValidSpec;
use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;

/// What a PyTorch tensor of a layer holds; its name is the key's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Weight,
    Bias,
    RunningMean,
    RunningVar,
    /// PyTorch's batch counter (an int64 scalar). Only its cumulative-average mode
    /// (`momentum=None`) reads it: exported as 0, ignored on import.
    BatchesTracked,
    /// A `zscore` layer's per-pixel mean and standard deviation (buffers).
    Mean,
    Std,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Weight => "weight",
            Role::Bias => "bias",
            Role::RunningMean => "running_mean",
            Role::RunningVar => "running_var",
            Role::BatchesTracked => "num_batches_tracked",
            Role::Mean => "mean",
            Role::Std => "std",
        }
    }
}

/// The model's weights as a PyTorch state dict, with the spec, input shape and the PyTorch
/// source of the model in its metadata.
pub fn export_state_dict(model: &Autoencoder, spec: &ValidSpec) -> Result<StateDict, InteropError> {
    let seq = torch_sequential(spec)?;
    let mut tensors = BTreeMap::new();
    for (layer, module) in layers(model).zip(&seq.param_module) {
        let Some(index) = module else { continue };
        for (role, shape) in torch_tensors(layer) {
            let tensor = match role {
                Role::BatchesTracked => StateTensor {
                    shape,
                    values: Values::I64(vec![0]),
                    dtype: "I64".into(),
                },
                _ => StateTensor::f32(shape, read(layer, role)?),
            };
            tensors.insert(format!("{index}.{}", role.name()), tensor);
        }
    }
    let metadata = [
        ("format", "pt".to_string()),
        (metadata_key::ARCH, spec.spec.to_toml()),
        (metadata_key::INPUT, spec.input.to_string()),
        (
            metadata_key::ENCODER_MODULES,
            seq.encoder_modules.to_string(),
        ),
        (metadata_key::TORCH, seq.source()),
        (metadata_key::VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(StateDict { tensors, metadata })
}

/// The encoder's part of [`export_state_dict`]: the tensors of the sequential's first
/// `cae.encoder_modules` modules (`net[:k].load_state_dict` takes them), with `cae.part` =
/// `encoder` in the metadata.
pub fn export_encoder_state_dict(
    model: &Autoencoder,
    spec: &ValidSpec,
) -> Result<StateDict, InteropError> {
    let mut state = export_state_dict(model, spec)?;
    let encoder_modules = torch_sequential(spec)?.encoder_modules;
    state.tensors.retain(|key, _| {
        key.split_once('.')
            .and_then(|(index, _)| index.parse::<usize>().ok())
            .is_some_and(|index| index < encoder_modules)
    });
    state
        .metadata
        .insert(metadata_key::PART.to_string(), "encoder".to_string());
    Ok(state)
}

/// One float tensor of a layer, in PyTorch's layout.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LayerTensor {
    /// The role's name: `weight`, `bias`, `running_mean`, `running_var`, `mean`, `std`.
    pub role: &'static str,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A layer's float tensors in PyTorch's layouts, which are ONNX's too (`Conv` `[out, in, kh,
/// kw]`, `ConvTranspose` `[in, out, kh, kw]`, `Gemm` with `transB` `[out, in]`).
pub(super) fn layer_tensors(layer: &Layer) -> Result<Vec<LayerTensor>, InteropError> {
    torch_tensors(layer)
        .into_iter()
        .filter(|(role, _)| *role != Role::BatchesTracked)
        .map(|(role, shape)| {
            Ok(LayerTensor {
                role: role.name(),
                shape,
                values: read(layer, role)?,
            })
        })
        .collect()
}

/// Builds the model of `spec` with the weights of `state` (from `origin`, named in errors).
/// Every expected tensor must be there with its exact shape and finite values, and nothing
/// else may be; `num_batches_tracked` may be left out.
pub fn import_state_dict(
    spec: &ValidSpec,
    state: &StateDict,
    origin: &str,
    device: &Device,
) -> Result<Autoencoder, InteropError> {
    let seq = torch_sequential(spec)?;
    let mut given = strip_common_prefix(&state.tensors);
    let mut model = Autoencoder::new(spec, device);
    let planned: Vec<_> = spec.layers().collect();

    // The key sets first, the way PyTorch's strict load reports them.
    let mut expected = Vec::new();
    for (pos, layer) in layers(&model).enumerate() {
        let Some(index) = seq.param_module[pos] else {
            continue;
        };
        for (role, shape) in torch_tensors(layer) {
            expected.push((pos, role, format!("{index}.{}", role.name()), shape));
        }
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|(_, role, key, _)| *role != Role::BatchesTracked && !given.contains_key(key))
        .map(|(_, _, key, shape)| format!("'{key}' {shape:?}"))
        .collect();
    let mut unexpected: Vec<&String> = given
        .keys()
        .filter(|k| !expected.iter().any(|(_, _, key, _)| key == *k))
        .collect();
    // Module order ('2.weight' before '12.weight'), as PyTorch lists them.
    unexpected.sort_by_key(|k| {
        let (head, tail) = k.split_once('.').unwrap_or((k, ""));
        (
            head.parse::<usize>().unwrap_or(usize::MAX),
            head.to_string(),
            tail.to_string(),
        )
    });
    let unexpected: Vec<String> = unexpected.iter().map(|k| format!("'{k}'")).collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(InteropError::Keys {
            origin: origin.to_string(),
            missing,
            unexpected,
        });
    }

    let mut all: Vec<&mut Layer> = model
        .encoder
        .iter_mut()
        .chain(model.decoder.iter_mut())
        .collect();
    for (pos, role, key, shape) in expected {
        let Some(t) = given.remove(&key) else {
            continue;
        };
        if role == Role::BatchesTracked {
            continue;
        }
        let layer = describe(planned[pos]);
        if t.shape != shape {
            let transposed = shape.len() == 2 && t.shape == [shape[1], shape[0]];
            return Err(InteropError::Shape(Box::new(ShapeMismatch {
                origin: origin.to_string(),
                key,
                layer,
                expected: shape,
                given: t.shape.clone(),
                hint: if transposed {
                    " (transposed? PyTorch's Linear weight is [out_features, in_features])"
                } else {
                    ""
                },
            })));
        }
        let Values::F32(values) = &t.values else {
            return Err(InteropError::Dtype {
                origin: origin.to_string(),
                key,
                dtype: t.dtype.clone(),
            });
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(InteropError::NonFinite {
                origin: origin.to_string(),
                key,
                layer,
            });
        }
        write(all[pos], role, &shape, values, device);
    }
    Ok(model)
}

/// Encoder then decoder layers, in the order of `ValidSpec::layers`.
fn layers(model: &Autoencoder) -> impl Iterator<Item = &Layer> {
    model.encoder.iter().chain(model.decoder.iter())
}

/// Checkpoints that nest the weights (`{"state_dict": ...}`) or hold the sequential in an
/// attribute (`self.net = nn.Sequential(...)`) put the same name before every key: dropped.
fn strip_common_prefix(tensors: &BTreeMap<String, StateTensor>) -> BTreeMap<String, StateTensor> {
    let mut tensors = tensors.clone();
    loop {
        let Some(prefix) = tensors
            .keys()
            .next()
            .and_then(|k| k.split_once('.'))
            .map(|(p, _)| format!("{p}."))
        else {
            return tensors;
        };
        let numeric = prefix.trim_end_matches('.').parse::<usize>().is_ok();
        if numeric || !tensors.keys().all(|k| k.starts_with(&prefix)) {
            return tensors;
        }
        tensors = tensors
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_string(), v))
            .collect();
    }
}

/// The PyTorch tensors of a layer and their PyTorch shapes.
fn torch_tensors(layer: &Layer) -> Vec<(Role, Vec<usize>)> {
    let with_bias = |weight: Vec<usize>, out: usize, bias: bool| {
        let mut v = vec![(Role::Weight, weight)];
        if bias {
            v.push((Role::Bias, vec![out]));
        }
        v
    };
    match layer {
        // [out, in, kh, kw] in both frameworks.
        Layer::Conv(b) => {
            let dims = b.conv.weight.val().dims();
            with_bias(dims.to_vec(), dims[0], b.conv.bias.is_some())
        }
        // [in, out, kh, kw] in both frameworks.
        Layer::ConvTranspose(b) => {
            let dims = b.conv.weight.val().dims();
            with_bias(dims.to_vec(), dims[1], b.conv.bias.is_some())
        }
        // Burn [in, out]; PyTorch [out, in].
        Layer::Dense(b) => {
            let [inputs, units] = b.linear.weight.val().dims();
            with_bias(vec![units, inputs], units, b.linear.bias.is_some())
        }
        Layer::BatchNorm(bn) => {
            let [n] = bn.gamma.val().dims();
            vec![
                (Role::Weight, vec![n]),
                (Role::Bias, vec![n]),
                (Role::RunningMean, vec![n]),
                (Role::RunningVar, vec![n]),
                (Role::BatchesTracked, vec![]),
            ]
        }
        Layer::Zscore(z) => {
            let dims = z.mean.value().dims().to_vec();
            vec![(Role::Mean, dims.clone()), (Role::Std, dims)]
        }
        _ => Vec::new(),
    }
}

/// A tensor of a layer, in PyTorch's layout.
fn read(layer: &Layer, role: Role) -> Result<Vec<f32>, InteropError> {
    let tensor: Option<Tensor<1>> = match (layer, role) {
        (Layer::Conv(b), Role::Weight) => Some(b.conv.weight.val().flatten(0, 3)),
        (Layer::Conv(b), Role::Bias) => b.conv.bias.as_ref().map(|p| p.val()),
        (Layer::ConvTranspose(b), Role::Weight) => Some(b.conv.weight.val().flatten(0, 3)),
        (Layer::ConvTranspose(b), Role::Bias) => b.conv.bias.as_ref().map(|p| p.val()),
        (Layer::Dense(b), Role::Weight) => {
            let [inputs, units] = b.linear.weight.val().dims();
            let values = to_vec(b.linear.weight.val().flatten(0, 1), role)?;
            return Ok(transpose(&values, inputs, units));
        }
        (Layer::Dense(b), Role::Bias) => b.linear.bias.as_ref().map(|p| p.val()),
        (Layer::BatchNorm(bn), Role::Weight) => Some(bn.gamma.val()),
        (Layer::BatchNorm(bn), Role::Bias) => Some(bn.beta.val()),
        (Layer::BatchNorm(bn), Role::RunningMean) => Some(bn.running_mean.value()),
        (Layer::BatchNorm(bn), Role::RunningVar) => Some(bn.running_var.value()),
        (Layer::Zscore(z), Role::Mean) => Some(z.mean.value().flatten(0, 2)),
        (Layer::Zscore(z), Role::Std) => Some(z.std.value().flatten(0, 2)),
        _ => None,
    };
    let tensor = tensor
        .ok_or_else(|| InteropError::Tensor(format!("the layer has no {} tensor", role.name())))?;
    to_vec(tensor, role)
}

fn to_vec(tensor: Tensor<1>, role: Role) -> Result<Vec<f32>, InteropError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| InteropError::Tensor(format!("reading {}: {e:?}", role.name())))
}

/// Sets a tensor of a layer from PyTorch-layout values of `shape` (already checked).
fn write(layer: &mut Layer, role: Role, shape: &[usize], values: &[f32], device: &Device) {
    let data = || TensorData::new(values.to_vec(), shape.to_vec());
    match (layer, role) {
        (Layer::Conv(b), Role::Weight) => b.conv.weight = Param::from_data(data(), device),
        (Layer::Conv(b), Role::Bias) => b.conv.bias = Some(Param::from_data(data(), device)),
        (Layer::ConvTranspose(b), Role::Weight) => b.conv.weight = Param::from_data(data(), device),
        (Layer::ConvTranspose(b), Role::Bias) => {
            b.conv.bias = Some(Param::from_data(data(), device))
        }
        (Layer::Dense(b), Role::Weight) => {
            let (units, inputs) = (shape[0], shape[1]);
            let burn = TensorData::new(transpose(values, units, inputs), [inputs, units]);
            b.linear.weight = Param::from_data(burn, device);
        }
        (Layer::Dense(b), Role::Bias) => b.linear.bias = Some(Param::from_data(data(), device)),
        (Layer::BatchNorm(bn), Role::Weight) => bn.gamma = Param::from_data(data(), device),
        (Layer::BatchNorm(bn), Role::Bias) => bn.beta = Param::from_data(data(), device),
        (Layer::BatchNorm(bn), Role::RunningMean) => {
            bn.running_mean = RunningState::new(Tensor::from_data(data(), device))
        }
        (Layer::BatchNorm(bn), Role::RunningVar) => {
            bn.running_var = RunningState::new(Tensor::from_data(data(), device))
        }
        (Layer::Zscore(z), Role::Mean) => {
            z.mean = RunningState::new(Tensor::from_data(data(), device))
        }
        (Layer::Zscore(z), Role::Std) => {
            z.std = RunningState::new(Tensor::from_data(data(), device))
        }
        _ => {}
    }
}

/// A row-major `rows × cols` matrix as its `cols × rows` transpose.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}
