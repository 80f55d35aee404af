//! An ONNX graph being built: nodes in order, initializers, and the scalar constants they share.
//! It only assembles `onnx-protobuf` messages (no encoding of our own) and keeps every name
//! unique; what each layer becomes is decided in [`super`].

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto::{self, Tensor as TensorType};
use onnx_protobuf::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};
use std::collections::{BTreeMap, BTreeSet};

/// The graph so far.
#[derive(Debug, Default)]
pub(super) struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Every node, value and initializer name given out.
    names: BTreeSet<String>,
    /// Scalar constants by bit pattern, so `0.5` is one initializer however often it is used.
    scalars: BTreeMap<u32, String>,
}

impl Graph {
    /// A name not given out yet: `base`, or `base_2`, `base_3`, ...
    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.names.contains(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.names.insert(name.clone());
        name
    }

    /// Appends a node `op(inputs)` named `{tag}/{op}`; returns the name of its one output (the
    /// node's name). `layer` (e.g. `encoder layer 2 (conv)`) becomes its doc string.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
        tag: &str,
        layer: &str,
    ) -> String {
        let name = self.unique(&format!("{tag}/{op}"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.to_string(),
            attribute: attributes,
            doc_string: layer.to_string(),
            ..Default::default()
        });
        name
    }

    /// A float32 initializer; returns its name (`name`, made unique).
    pub fn weights(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// An int64 initializer (a shape for `Reshape`).
    pub fn ints(&mut self, name: &str, values: &[i64]) -> String {
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: DataType::INT64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// A float32 scalar initializer, shared by every use of the same value.
    pub fn scalar(&mut self, value: f32) -> String {
        if let Some(name) = self.scalars.get(&value.to_bits()) {
            return name.clone();
        }
        let name = self.weights(&format!("const/{value:?}"), &[], &[value]);
        self.scalars.insert(value.to_bits(), name.clone());
        name
    }

    /// Makes `value` the graph's output `name`: the last node's output is renamed when it is
    /// `value`, otherwise (the input, or a value already used) an `Identity` gives it.
    pub fn finish_as(&mut self, value: &str, name: &str, tag: &str) {
        self.names.insert(name.to_string());
        match self.nodes.last_mut() {
            Some(last) if last.output == [value] => last.output = vec![name.to_string()],
            _ => {
                self.nodes.push(NodeProto {
                    input: vec![value.to_string()],
                    output: vec![name.to_string()],
                    name: format!("{tag}/Identity"),
                    op_type: "Identity".into(),
                    ..Default::default()
                });
            }
        }
    }

    /// The graph proto with its one input and one output.
    pub fn into_proto(
        self,
        name: &str,
        input: ValueInfoProto,
        output: ValueInfoProto,
    ) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: name.to_string(),
            initializer: self.initializers,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }
    }
}

/// A float32 tensor value named `name` of shape `[batch, dims...]` (`batch` a symbolic size).
pub(super) fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let batch = Dimension {
        value: Some(dimension::Value::DimParam("batch".into())),
        ..Default::default()
    };
    let fixed = dims.iter().map(|&d| Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    });
    let tensor = TensorType {
        elem_type: DataType::FLOAT as i32,
        shape: MessageField::some(TensorShapeProto {
            dim: std::iter::once(batch).chain(fixed).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.to_string(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An integer-list attribute (`kernel_shape`, `pads`, ...).
pub(super) fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        type_: EnumOrUnknown::new(AttributeType::INTS),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

/// An integer attribute.
pub(super) fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        type_: EnumOrUnknown::new(AttributeType::INT),
        i: value,
        ..Default::default()
    }
}

/// A float attribute.
pub(super) fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        type_: EnumOrUnknown::new(AttributeType::FLOAT),
        f: value,
        ..Default::default()
    }
}

/// A string attribute.
pub(super) fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        type_: EnumOrUnknown::new(AttributeType::STRING),
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}
