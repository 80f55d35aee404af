//! ONNX export: the graph of a small spec node by node, initializer names, shapes and values
//! against the PyTorch export, every preset and every layer kind giving a well-formed graph
//! (each node's inputs defined before it), and the file reading back. Outputs are compared with
//! onnxruntime by `bench/onnx_check.sh`.

use super::*;
use crate::data::ImageShape;
use crate::interop::{StateDict, Values, export_state_dict, torch_sequential};
use crate::spec::{ArchSpec, PRESETS};
use burn::tensor::Device;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::dimension;
use onnx_protobuf::{NodeProto, type_proto};
use std::collections::BTreeSet;

fn spec(name: &str, input: &str) -> ValidSpec {
    ArchSpec::resolve(name, &[], Some(ImageShape::parse(input).unwrap())).unwrap()
}

fn spec_text(toml: &str, input: &str) -> ValidSpec {
    ArchSpec::resolve_text(
        "test.toml",
        toml,
        &[],
        Some(ImageShape::parse(input).unwrap()),
    )
    .unwrap()
}

fn export(s: &ValidSpec, part: ExportPart) -> OnnxModel {
    let model = Autoencoder::new(s, &Device::flex());
    export_onnx(&model, s, part).unwrap()
}

/// The ints of attribute `name` of `node`.
fn ints_of(node: &NodeProto, name: &str) -> Vec<i64> {
    let a = node.attribute.iter().find(|a| a.name == name).unwrap();
    assert_eq!(a.type_.enum_value(), Ok(AttributeType::INTS), "{name}");
    a.ints.clone()
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> &'a onnx_protobuf::AttributeProto {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{} has no {name}", node.name))
}

/// `[batch, dims...]` of a graph input or output, the batch as `None`.
fn dims(v: &onnx_protobuf::ValueInfoProto) -> Vec<Option<i64>> {
    let Some(type_proto::Value::TensorType(t)) = &v.type_.value else {
        panic!("{} is not a tensor", v.name);
    };
    t.shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(n)) => Some(*n),
            _ => None,
        })
        .collect()
}

/// A graph ONNX runtimes accept: every node input is the graph input, an initializer or an
/// earlier node's output; names are unique; the last value is the graph's output.
fn assert_well_formed(m: &OnnxModel, what: &str) {
    let g = &m.proto.graph;
    let mut defined: BTreeSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        defined.len(),
        g.initializer.len(),
        "{what}: duplicate initializers"
    );
    defined.insert(INPUT);
    defined.insert("");
    for n in &g.node {
        for i in &n.input {
            assert!(
                defined.contains(i.as_str()),
                "{what}: {} reads undefined {i}",
                n.name
            );
        }
        for o in &n.output {
            assert!(defined.insert(o.as_str()), "{what}: {o} defined twice");
        }
    }
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name, OUTPUT);
    assert!(
        defined.contains(OUTPUT),
        "{what}: nothing computes the output"
    );
    assert_eq!(m.proto.opset_import[0].version, OPSET, "{what}: opset");
    // Encodes and reads back unchanged.
    let bytes = m.to_bytes().unwrap();
    let back = OnnxModel::from_bytes(&bytes, what).unwrap();
    assert_eq!(back.proto, m.proto, "{what}: round trip");
}

#[test]
fn pytorch_small_is_conv_relu_conv_then_two_transposed_convs() {
    let s = spec("pytorch-small", "1x28x28");
    let m = export(&s, ExportPart::Model);
    assert_eq!(
        m.op_types(),
        [
            "Conv",
            "Relu",
            "Conv",
            "ConvTranspose",
            "Relu",
            "ConvTranspose",
            "Sigmoid"
        ]
    );
    assert_eq!(
        m.initializers(),
        [
            ("encoder.1.weight", vec![16, 1, 3, 3]),
            ("encoder.1.bias", vec![16]),
            ("encoder.2.weight", vec![8, 16, 3, 3]),
            ("encoder.2.bias", vec![8]),
            ("decoder.1.weight", vec![8, 16, 3, 3]),
            ("decoder.1.bias", vec![16]),
            ("decoder.2.weight", vec![16, 1, 3, 3]),
            ("decoder.2.bias", vec![1]),
        ]
    );
    let g = &m.proto.graph;
    let conv = &g.node[0];
    assert_eq!(conv.input, ["input", "encoder.1.weight", "encoder.1.bias"]);
    assert_eq!(ints_of(conv, "strides"), [2, 2]);
    assert_eq!(ints_of(conv, "pads"), [1, 1, 1, 1]);
    assert_eq!(ints_of(conv, "kernel_shape"), [3, 3]);
    assert_eq!(conv.doc_string, "encoder layer 1 (conv)");
    let up = &g.node[3];
    assert_eq!(ints_of(up, "pads"), [1, 1, 1, 1]);
    assert_eq!(ints_of(up, "output_padding"), [1, 1]);
    assert_eq!(g.node[6].output, ["output"]);
    assert_eq!(g.input[0].name, "input");
    assert_eq!(dims(&g.input[0]), [None, Some(1), Some(28), Some(28)]);
    assert_eq!(dims(&g.output[0]), [None, Some(1), Some(28), Some(28)]);
    assert_eq!(m.values(), s.total_params());
    let meta: Vec<&str> = m
        .proto
        .metadata_props
        .iter()
        .map(|p| p.key.as_str())
        .collect();
    assert_eq!(meta, ["cae.arch", "cae.input", "cae.part", "cae.version"]);
    assert_well_formed(&m, "pytorch-small");

    let e = export(&s, ExportPart::Encoder);
    assert_eq!(e.op_types(), ["Conv", "Relu", "Conv"]);
    assert_eq!(e.initializers().len(), 4);
    assert_eq!(
        dims(&e.proto.graph.output[0]),
        [None, Some(8), Some(7), Some(7)]
    );
    assert_eq!(e.proto.metadata_props[2].value, "encoder");
    assert_well_formed(&e, "pytorch-small encoder");
}

#[test]
fn initializers_hold_the_pytorch_exports_values_under_layer_names() {
    // dense-latent: convs, a dense layer (PyTorch's [out, in] layout) and a reshape.
    let s = spec("dense-latent", "1x28x28");
    let model = Autoencoder::new(&s, &Device::flex());
    let m = export_onnx(&model, &s, ExportPart::Model).unwrap();
    let state: StateDict = export_state_dict(&model, &s).unwrap();
    let seq = torch_sequential(&s).unwrap();
    let planned: Vec<_> = s.layers().collect();
    let mut compared = 0;
    for (pos, module) in seq.param_module.iter().enumerate() {
        let Some(index) = module else { continue };
        let l = planned[pos];
        let tag = format!("{}.{}", l.part, l.index.unwrap());
        for role in ["weight", "bias"] {
            let Some(torch) = state.tensors.get(&format!("{index}.{role}")) else {
                continue;
            };
            let onnx = m
                .proto
                .graph
                .initializer
                .iter()
                .find(|t| t.name == format!("{tag}.{role}"))
                .unwrap();
            let Values::F32(want) = &torch.values else {
                panic!("float weights")
            };
            let got: Vec<f32> = onnx
                .raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let shape: Vec<usize> = onnx.dims.iter().map(|&d| d as usize).collect();
            assert_eq!(shape, torch.shape, "{tag}.{role}");
            assert_eq!(&got, want, "{tag}.{role}");
            compared += 1;
        }
    }
    assert!(compared >= 8, "{compared}");
    let gemm = m
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.op_type == "Gemm")
        .unwrap();
    assert_eq!(attr(gemm, "transB").i, 1);
    let ops = m.op_types();
    assert!(
        ops.contains(&"Flatten") && ops.contains(&"Reshape"),
        "{ops:?}"
    );
}

#[test]
fn every_preset_exports_whole_and_encoder_alone() {
    for p in PRESETS {
        let s = spec(
            p.name,
            if p.name.starts_with("inspect") {
                "1x32x32"
            } else {
                "1x28x28"
            },
        );
        for part in [ExportPart::Model, ExportPart::Encoder] {
            let m = export(&s, part);
            assert_well_formed(&m, &format!("{} {part}", p.name));
        }
    }
}

/// Every layer kind the presets leave out, plus a U-Net's skip connections.
const EVERY_LAYER: &str = r#"
    [[encoder]]
    type = "conv"
    filters = 4
    kernel = 3
    stride = 2
    activation = "elu(0.5)"
    [[encoder]]
    type = "batch_norm"
    [[encoder]]
    type = "save"
    name = "half"
    [[encoder]]
    type = "avg_pool"
    size = 2
    padding = "same"
    [[encoder]]
    type = "conv"
    filters = 4
    kernel = 3
    dilation = 2
    activation = "gelu"
    [[encoder]]
    type = "dropout"
    rate = 0.2
    [[encoder]]
    type = "dense"
    units = 6
    activation = "tanh"
    [[encoder]]
    type = "batch_norm"
    [[decoder]]
    type = "dense"
    shape = "4x7x7"
    activation = "leaky_relu(0.2)"
    [[decoder]]
    type = "upsample"
    factor = 2
    mode = "bilinear"
    [[decoder]]
    type = "concat"
    from = "half"
    [[decoder]]
    type = "conv_transpose"
    filters = 1
    kernel = 3
    stride = 2
    output_padding = 1
    padding = 1
    bias = false
    [[decoder]]
    type = "activation"
    function = "sigmoid"
"#;

#[test]
fn every_layer_kind_has_its_nodes() {
    let s = spec_text(EVERY_LAYER, "1x28x28");
    let m = export(&s, ExportPart::Model);
    assert_well_formed(&m, "every layer");
    let ops = m.op_types();
    for op in [
        "Elu",
        "BatchNormalization",
        "AveragePool",
        "Erf",
        "Flatten",
        "Gemm",
        "Tanh",
        "Reshape",
        "LeakyRelu",
        "Resize",
        "Concat",
        "ConvTranspose",
        "Sigmoid",
    ] {
        assert!(ops.contains(&op), "no {op} in {ops:?}");
    }
    // Dropout is the identity at inference.
    assert!(!ops.contains(&"Dropout"), "{ops:?}");
    let g = &m.proto.graph;
    let node = |op: &str| g.node.iter().find(|n| n.op_type == op).unwrap();
    let bn = node("BatchNormalization");
    assert_eq!(
        bn.input[1..],
        [
            "encoder.2.weight",
            "encoder.2.bias",
            "encoder.2.running_mean",
            "encoder.2.running_var"
        ]
    );
    assert!((attr(bn, "epsilon").f - 1e-5).abs() < 1e-12);
    assert_eq!(
        String::from_utf8_lossy(&attr(node("Resize"), "mode").s),
        "linear"
    );
    assert_eq!(attr(node("AveragePool"), "count_include_pad").i, 0);
    assert!((attr(node("Elu"), "alpha").f - 0.5).abs() < 1e-7);
    // The concat joins the upsampled flow with the batch norm's output, kept by `save`.
    let concat = node("Concat");
    assert_eq!(
        concat.input,
        ["decoder.2/Resize", "encoder.2/BatchNormalization"]
    );
    let reshape = node("Reshape");
    let shape = g
        .initializer
        .iter()
        .find(|t| t.name == reshape.input[1])
        .unwrap();
    assert_eq!(shape.dims, [4]);
    // The convolution without bias has a weight only.
    assert_eq!(
        node("ConvTranspose").input,
        ["decoder.3/Concat", "decoder.4.weight"]
    );
}

#[test]
fn nearest_upsample_repeats_pixels() {
    let s = spec("upsample", "1x28x28");
    let m = export(&s, ExportPart::Model);
    let resize = m
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.op_type == "Resize")
        .unwrap();
    let s = |name: &str| String::from_utf8_lossy(&attr(resize, name).s).into_owned();
    assert_eq!(s("mode"), "nearest");
    assert_eq!(s("coordinate_transformation_mode"), "asymmetric");
    assert_eq!(s("nearest_mode"), "floor");
    assert_eq!(resize.input[1], "", "no roi");
}

#[test]
fn a_zscore_layer_exports_its_buffers_and_the_clipped_score() {
    let s = spec("inspect-aligned", "1x16x24");
    let m = export(&s, ExportPart::Encoder);
    assert_well_formed(&m, "inspect-aligned encoder");
    let inits = m.initializers();
    assert_eq!(inits[0], ("encoder.1.mean", vec![1, 16, 24]));
    assert_eq!(inits[1], ("encoder.1.std", vec![1, 16, 24]));
    assert_eq!(
        m.op_types()[..8],
        [
            "Add",
            "Reciprocal",
            "Sub",
            "Mul",
            "Clip",
            "Div",
            "Concat",
            "Conv"
        ]
    );
    let g = &m.proto.graph;
    let clip = &g.node[4];
    let scalar = |name: &str| {
        let t = g.initializer.iter().find(|t| t.name == name).unwrap();
        assert!(t.dims.is_empty(), "{name} is a scalar");
        f32::from_le_bytes(t.raw_data[..4].try_into().unwrap())
    };
    assert_eq!(scalar(&clip.input[1]), -ZSCORE_CLIP);
    assert_eq!(scalar(&clip.input[2]), ZSCORE_CLIP);
    assert_eq!(scalar(&g.node[5].input[1]), ZSCORE_CLIP / 2.0);
    assert_eq!(scalar(&g.node[0].input[1]), 0.02);
    // The image first, then its score.
    assert_eq!(g.node[6].input, ["input", "encoder.1/Div"]);
}

#[test]
fn a_pool_pytorch_cannot_express_exports_to_onnx() {
    // 2x2 window, stride 1, `same`: padding after only (safetensors export refuses it).
    let s = spec_text(
        r#"
        [[encoder]]
        type = "max_pool"
        size = 2
        stride = 1
        padding = "same"
        [[decoder]]
        type = "conv"
        filters = 1
        kernel = 1
        "#,
        "1x8x8",
    );
    assert!(torch_sequential(&s).is_err());
    let m = export(&s, ExportPart::Model);
    assert_well_formed(&m, "uneven pool");
    assert_eq!(ints_of(&m.proto.graph.node[0], "pads"), [0, 0, 1, 1]);
}

#[test]
fn an_encoder_of_passthrough_layers_gives_an_identity() {
    let s = spec_text(
        r#"
        [[encoder]]
        type = "dropout"
        rate = 0.5
        [[decoder]]
        type = "conv"
        filters = 1
        kernel = 1
        "#,
        "1x4x4",
    );
    let m = export(&s, ExportPart::Encoder);
    assert_eq!(m.op_types(), ["Identity"]);
    assert_well_formed(&m, "dropout only");
}

#[test]
fn garbage_is_not_an_onnx_model() {
    let e = OnnxModel::from_bytes(b"\xff\xff\xff\xff not protobuf", "m.onnx").unwrap_err();
    assert!(
        e.to_string().starts_with("m.onnx: not a valid ONNX model"),
        "{e}"
    );
}
