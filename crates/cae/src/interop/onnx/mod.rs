//! ONNX export (`cae export RUN -o model.onnx`): a trained model as an ONNX graph that
//! onnxruntime, OpenVINO, TensorRT and the rest run without cae or PyTorch.
//!
//! # The file
//! Opset [`OPSET`], one input `input` (`[batch, C, H, W]` float32 of the run's size, `batch`
//! symbolic) and one output `output`: the reconstruction (or a segmentation spec's map), or with
//! [`ExportPart::Encoder`] the code (`[batch, c, h, w]` or `[batch, n]`). Weights are
//! initializers named by layer, `{part}.{index}.{role}` (`encoder.1.weight`, `decoder.3.bias`,
//! `encoder.2.running_mean`, `encoder.1.mean` for a `zscore` layer), in PyTorch's layouts, which
//! are ONNX's. Metadata: `cae.arch` (the resolved spec, TOML), `cae.input`, `cae.part`,
//! `cae.version`.
//!
//! # Layers
//! | layer | nodes |
//! | --- | --- |
//! | conv / conv_transpose | `Conv` / `ConvTranspose` (explicit `pads`), then the activation |
//! | dense | `Gemm` (`transB = 1`), then the activation |
//! | max_pool / avg_pool | `MaxPool` / `AveragePool` (`count_include_pad = 0`), explicit `pads` |
//! | upsample | `Resize`: nearest (`asymmetric`, `floor`: each pixel repeated) or linear (`half_pixel`) |
//! | batch_norm | `BatchNormalization` with the running statistics (inference) |
//! | dropout | nothing (inference) |
//! | activation | `Relu`, `LeakyRelu`, `Elu`, `Sigmoid`, `Tanh`; gelu as `x·(1 + erf(x/√2))/2` |
//! | implicit flatten / reshape | `Flatten` / `Reshape` to `[-1, c, h, w]` |
//! | save / concat | the saved value is reused: `Concat` along channels |
//! | zscore | `Sub`, `Reciprocal(Add(std, floor))`, `Mul`, `Clip(±8)`, `Div(4)`, `Concat` |
//!
//! Every layer kind of a spec has an ONNX form, including pools whose padding no PyTorch pool
//! reproduces (which `.safetensors` export refuses).

mod graph;

use super::InteropError;
use super::convert::layer_tensors;
use super::torch_module::describe;
use crate::model::{Autoencoder, Layer, ZSCORE_CLIP};
use crate::spec::{Activation, LayerPlan, PlannedLayer, Shape, UpsampleMode, ValidSpec};
use graph::{Graph, float, int, ints, string, value_info};
use onnx_protobuf::{AttributeProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};
use protobuf::{Message, MessageField};

/// The opset the graphs use: `Resize` and `Clip` with tensor inputs (13+), `BatchNormalization`
/// 15; 17 is read by every current runtime.
pub const OPSET: i64 = 17;

/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// The graph's input and output names.
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "output";

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportPart {
    /// The whole model: image in, reconstruction (or map) out.
    Model,
    /// The encoder alone: image in, code out.
    Encoder,
}

impl std::fmt::Display for ExportPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExportPart::Model => "model",
            ExportPart::Encoder => "encoder",
        })
    }
}

/// An exported ONNX model.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub proto: ModelProto,
}

impl OnnxModel {
    /// The model as the bytes of a `.onnx` file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InteropError> {
        self.proto
            .write_to_bytes()
            .map_err(|e| InteropError::Tensor(format!("encoding the ONNX model: {e}")))
    }

    /// Reads `.onnx` bytes back (`origin` names them in errors).
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<OnnxModel, InteropError> {
        ModelProto::parse_from_bytes(bytes)
            .map(|proto| OnnxModel { proto })
            .map_err(|e| InteropError::Corrupt {
                path: origin.to_string(),
                format: "ONNX model",
                message: e.to_string(),
            })
    }

    /// The op type of every node, in order.
    pub fn op_types(&self) -> Vec<&str> {
        self.proto
            .graph
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect()
    }

    /// Every initializer's name and shape, in order.
    pub fn initializers(&self) -> Vec<(&str, Vec<usize>)> {
        self.proto
            .graph
            .initializer
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.dims.iter().map(|&d| d as usize).collect(),
                )
            })
            .collect()
    }

    /// Values held by the initializers (weights, statistics and constants).
    pub fn values(&self) -> usize {
        self.proto
            .graph
            .initializer
            .iter()
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum()
    }
}

/// The ONNX graph of `model` (built from `spec`), whole or its encoder alone.
pub fn export_onnx(
    model: &Autoencoder,
    spec: &ValidSpec,
    part: ExportPart,
) -> Result<OnnxModel, InteropError> {
    let mut g = Graph::default();
    let mut flow = INPUT.to_string();
    let mut saved: Vec<Option<String>> = Vec::new();
    let layers: Vec<(&PlannedLayer, &Layer)> = match part {
        ExportPart::Model => spec
            .layers()
            .zip(model.encoder.iter().chain(&model.decoder))
            .collect(),
        ExportPart::Encoder => spec.encoder.iter().zip(&model.encoder).collect(),
    };
    for (planned, layer) in &layers {
        flow = emit(&mut g, planned, layer, flow, &mut saved)?;
    }
    g.finish_as(&flow, OUTPUT, "output");

    let i = spec.input;
    let out_dims = match part {
        ExportPart::Model => {
            let o = spec.output();
            vec![o.channels, o.height, o.width]
        }
        ExportPart::Encoder => match spec.bottleneck() {
            Shape::Volume { c, h, w } => vec![c, h, w],
            Shape::Vector(n) => vec![n],
        },
    };
    let name = if spec.spec.name.is_empty() {
        "cae".to_string()
    } else {
        spec.spec.name.clone()
    };
    let graph = g.into_proto(
        &name,
        value_info(INPUT, &[i.channels, i.height, i.width]),
        value_info(OUTPUT, &out_dims),
    );
    let meta = |key: &str, value: String| StringStringEntryProto {
        key: key.to_string(),
        value,
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "cae".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: match part {
            ExportPart::Model => format!("{name}: image in, the model's output out"),
            ExportPart::Encoder => format!("{name}: image in, the encoder's code out"),
        },
        graph: MessageField::some(graph),
        metadata_props: vec![
            meta("cae.arch", spec.spec.to_toml()),
            meta("cae.input", spec.input.to_string()),
            meta("cae.part", part.to_string()),
            meta("cae.version", env!("CARGO_PKG_VERSION").into()),
        ],
        ..Default::default()
    };
    Ok(OnnxModel { proto })
}

/// `encoder.2` for a user's layer, `encoder.flatten` for an implicit one: the prefix of its
/// nodes' and initializers' names.
fn tag(l: &PlannedLayer) -> String {
    match l.index {
        Some(i) => format!("{}.{i}", l.part),
        None => format!("{}.{}", l.part, l.plan.kind()),
    }
}

/// Appends the nodes of one layer, fed `x`; returns the value it gives.
fn emit(
    g: &mut Graph,
    l: &PlannedLayer,
    layer: &Layer,
    x: String,
    saved: &mut Vec<Option<String>>,
) -> Result<String, InteropError> {
    let tag = tag(l);
    let doc = describe(l);
    // The layer's weights as initializers, in role order (weight, bias, ...).
    let mut tensors = Vec::new();
    for t in layer_tensors(layer)? {
        tensors.push(g.weights(&format!("{tag}.{}", t.role), &t.shape, &t.values));
    }
    // The layer's input, then its tensors: the inputs of its main node.
    let with_tensors: Vec<&str> = std::iter::once(x.as_str())
        .chain(tensors.iter().map(String::as_str))
        .collect();
    let y = match &l.plan {
        LayerPlan::Conv {
            kernel,
            stride,
            dilation,
            padding,
            activation,
            ..
        } => {
            let attrs = vec![
                ints("kernel_shape", kernel),
                ints("strides", stride),
                ints("dilations", dilation),
                // ONNX: [top, left, bottom, right], as the plan.
                ints("pads", padding),
                int("group", 1),
            ];
            let y = g.node("Conv", &with_tensors, attrs, &tag, &doc);
            activate(g, *activation, y, &tag, &doc)
        }
        LayerPlan::ConvTranspose {
            kernel,
            stride,
            padding: [ph, pw],
            output_padding,
            activation,
            ..
        } => {
            let attrs = vec![
                ints("kernel_shape", kernel),
                ints("strides", stride),
                ints("dilations", &[1, 1]),
                ints("pads", &[*ph, *pw, *ph, *pw]),
                ints("output_padding", output_padding),
                int("group", 1),
            ];
            let y = g.node("ConvTranspose", &with_tensors, attrs, &tag, &doc);
            activate(g, *activation, y, &tag, &doc)
        }
        LayerPlan::Dense { activation, .. } => {
            // A = [batch, in], B = [out, in] (PyTorch's layout): A·Bᵀ + C.
            let attrs = vec![int("transB", 1)];
            let y = g.node("Gemm", &with_tensors, attrs, &tag, &doc);
            activate(g, *activation, y, &tag, &doc)
        }
        LayerPlan::MaxPool {
            size,
            stride,
            padding,
        } => g.node(
            "MaxPool",
            &[&x],
            pool_attrs(size, stride, padding),
            &tag,
            &doc,
        ),
        LayerPlan::AvgPool {
            size,
            stride,
            padding,
        } => {
            // Burn's pool averages over the window's pixels inside the image only.
            let mut attrs = pool_attrs(size, stride, padding);
            attrs.push(int("count_include_pad", 0));
            g.node("AveragePool", &[&x], attrs, &tag, &doc)
        }
        LayerPlan::Upsample { factor, mode } => {
            let scales = g.weights(
                &format!("{tag}.scales"),
                &[4],
                &[1.0, 1.0, factor[0] as f32, factor[1] as f32],
            );
            let attrs = match mode {
                // An integer factor: output pixel i reads input pixel floor(i / factor).
                UpsampleMode::Nearest => vec![
                    string("mode", "nearest"),
                    string("coordinate_transformation_mode", "asymmetric"),
                    string("nearest_mode", "floor"),
                ],
                // align_corners = false, as Burn's and PyTorch's bilinear.
                UpsampleMode::Bilinear => vec![
                    string("mode", "linear"),
                    string("coordinate_transformation_mode", "half_pixel"),
                ],
            };
            // Inputs: X, roi (unused: empty name), scales.
            g.node("Resize", &[&x, "", &scales], attrs, &tag, &doc)
        }
        LayerPlan::BatchNorm { .. } => {
            let Layer::BatchNorm(bn) = layer else {
                return Err(mismatch(&doc));
            };
            // Inputs: X, scale (γ), B (β), running mean, running variance.
            let attrs = vec![float("epsilon", bn.epsilon as f32)];
            g.node("BatchNormalization", &with_tensors, attrs, &tag, &doc)
        }
        LayerPlan::Dropout { .. } => x,
        LayerPlan::Activation(a) => activate(g, *a, x, &tag, &doc),
        LayerPlan::Flatten => g.node("Flatten", &[&x], vec![int("axis", 1)], &tag, &doc),
        LayerPlan::Reshape { c, h, w } => {
            let shape = g.ints(
                &format!("{tag}.shape"),
                &[-1, *c as i64, *h as i64, *w as i64],
            );
            g.node("Reshape", &[&x, &shape], Vec::new(), &tag, &doc)
        }
        LayerPlan::Save { slot, .. } => {
            if saved.len() <= *slot {
                saved.resize(*slot + 1, None);
            }
            saved[*slot] = Some(x.clone());
            x
        }
        LayerPlan::Concat { slot, .. } => {
            let kept = saved
                .get(*slot)
                .cloned()
                .flatten()
                .ok_or_else(|| mismatch(&doc))?;
            // The flow's channels first, as `model::Saved::join`.
            g.node("Concat", &[&x, &kept], vec![int("axis", 1)], &tag, &doc)
        }
        LayerPlan::Zscore { floor, .. } => {
            let [mean, std] = tensors.as_slice() else {
                return Err(mismatch(&doc));
            };
            let (mean, std) = (mean.clone(), std.clone());
            // clamp((x − mean) · 1/(std + floor), −8, 8) / 4, as `model::Zscore::forward`.
            let floor = g.scalar(*floor as f32);
            let denominator = g.node("Add", &[&std, &floor], Vec::new(), &tag, &doc);
            let scale = g.node("Reciprocal", &[&denominator], Vec::new(), &tag, &doc);
            let centred = g.node("Sub", &[&x, &mean], Vec::new(), &tag, &doc);
            let z = g.node("Mul", &[&centred, &scale], Vec::new(), &tag, &doc);
            let (lo, hi) = (g.scalar(-ZSCORE_CLIP), g.scalar(ZSCORE_CLIP));
            let clipped = g.node("Clip", &[&z, &lo, &hi], Vec::new(), &tag, &doc);
            let half = g.scalar(ZSCORE_CLIP / 2.0);
            let z = g.node("Div", &[&clipped, &half], Vec::new(), &tag, &doc);
            g.node("Concat", &[&x, &z], vec![int("axis", 1)], &tag, &doc)
        }
    };
    Ok(y)
}

/// The activation's nodes after `x`; `x` itself for identity.
fn activate(g: &mut Graph, a: Activation, x: String, tag: &str, doc: &str) -> String {
    match a {
        Activation::Identity => x,
        Activation::Relu => g.node("Relu", &[&x], Vec::new(), tag, doc),
        Activation::LeakyRelu(slope) => g.node(
            "LeakyRelu",
            &[&x],
            vec![float("alpha", slope as f32)],
            tag,
            doc,
        ),
        Activation::Elu(alpha) => {
            g.node("Elu", &[&x], vec![float("alpha", alpha as f32)], tag, doc)
        }
        Activation::Sigmoid => g.node("Sigmoid", &[&x], Vec::new(), tag, doc),
        Activation::Tanh => g.node("Tanh", &[&x], Vec::new(), tag, doc),
        Activation::Gelu => {
            // The exact (erf) GELU, as Burn's; ONNX's own Gelu op needs opset 20.
            let root2 = g.scalar(std::f32::consts::SQRT_2);
            let (one, half) = (g.scalar(1.0), g.scalar(0.5));
            let scaled = g.node("Div", &[&x, &root2], Vec::new(), tag, doc);
            let erf = g.node("Erf", &[&scaled], Vec::new(), tag, doc);
            let shifted = g.node("Add", &[&erf, &one], Vec::new(), tag, doc);
            let product = g.node("Mul", &[&x, &shifted], Vec::new(), tag, doc);
            g.node("Mul", &[&product, &half], Vec::new(), tag, doc)
        }
    }
}

/// The model does not hold the layer its spec plans (a bug, not bad input).
fn mismatch(layer: &str) -> InteropError {
    InteropError::Tensor(format!("{layer}: the model does not match its spec"))
}

/// The window attributes both pools share.
fn pool_attrs(size: &[usize; 2], stride: &[usize; 2], padding: &[usize; 4]) -> Vec<AttributeProto> {
    vec![
        ints("kernel_shape", size),
        ints("strides", stride),
        ints("pads", padding),
    ]
}

#[cfg(test)]
mod tests;
