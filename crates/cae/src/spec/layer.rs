//! The layer vocabulary of an architecture spec, exactly as users write it in TOML: conv,
//! conv_transpose, pools, upsample, dense, batch_norm, dropout, activation, and the skip
//! connections of a U-Net (`save` a volume, `concat` it later), and `zscore`, the input's
//! per-pixel z-score against the training images for aligned parts. Values are parsed
//! leniently (a kernel may be `3` or `[3, 5]`, padding `"same"`, `1`, `[1, 2]` or
//! `[top, left, bottom, right]`) and checked later, in one place, by [`super::check`].

use crate::quote::{InvalidValue, quote};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One layer of an encoder or decoder, tagged by `type = "..."` in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// 2-D convolution.
    Conv {
        filters: usize,
        kernel: Pair,
        #[serde(default = "Pair::one")]
        stride: Pair,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "Pair::one")]
        dilation: Pair,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_regularizer: Option<Regularizer>,
    },
    /// 2-D transposed convolution (a learned upsampling).
    ConvTranspose {
        filters: usize,
        kernel: Pair,
        #[serde(default = "Pair::one")]
        stride: Pair,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "Pair::zero")]
        output_padding: Pair,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_regularizer: Option<Regularizer>,
    },
    /// Max pooling; `stride` defaults to `size`.
    MaxPool {
        size: Pair,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
        #[serde(default = "Padding::valid")]
        padding: Padding,
    },
    /// Average pooling; `stride` defaults to `size`.
    AvgPool {
        size: Pair,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
        #[serde(default = "Padding::valid")]
        padding: Padding,
    },
    /// Upsampling by an integer factor.
    Upsample {
        factor: Pair,
        #[serde(default)]
        mode: UpsampleMode,
    },
    /// Fully connected layer. Its input is flattened when it is a volume. Give `units` for a
    /// vector output, or `shape = "CxHxW"` to reshape the output into a volume; a vector that
    /// feeds a spatial layer is reshaped to the last volume the encoder flattened.
    Dense {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        units: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shape: Option<String>,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kernel_regularizer: Option<Regularizer>,
    },
    /// Batch normalisation over channels (volumes) or features (vectors).
    BatchNorm {},
    /// Dropout with probability `rate` (training only).
    Dropout { rate: f64 },
    /// A standalone activation (e.g. after `batch_norm`).
    Activation { function: Activation },
    /// Keeps the volume that flows here under `name` for a later `concat`, and passes it on
    /// unchanged: the encoder end of a skip connection (U-Net).
    Save { name: String },
    /// Joins the volume saved under `from` to the flow, along channels (the flow's channels
    /// first); both must have the same height and width. The decoder end of a skip connection:
    /// fine detail the bottleneck lost comes back at full resolution.
    Concat { from: String },
    /// Appends, per input channel, the z-score of every pixel against the mean and standard
    /// deviation of the training images at that position (fitted once, before the first
    /// epoch, and kept with the weights): where an aligned part (a solar cell, a printed
    /// board) differs from what is normal *there*. The output has twice the input's channels:
    /// the image, then `clamp((x − mean) / (std + floor), −8, 8) / 4`. Only as the first
    /// encoder layer; the model then takes its training size only.
    Zscore {
        #[serde(default = "default_zscore_floor")]
        floor: f64,
    },
}

/// The default `floor` of a `zscore` layer: added to every pixel's standard deviation, so that
/// pixels nearly constant over the training images (a black border) stay finite and quiet.
pub const DEFAULT_ZSCORE_FLOOR: f64 = 0.02;

fn default_zscore_floor() -> f64 {
    DEFAULT_ZSCORE_FLOOR
}

fn yes() -> bool {
    true
}

impl LayerSpec {
    /// The `type` name users write.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv { .. } => "conv",
            LayerSpec::ConvTranspose { .. } => "conv_transpose",
            LayerSpec::MaxPool { .. } => "max_pool",
            LayerSpec::AvgPool { .. } => "avg_pool",
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::BatchNorm {} => "batch_norm",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Activation { .. } => "activation",
            LayerSpec::Save { .. } => "save",
            LayerSpec::Concat { .. } => "concat",
            LayerSpec::Zscore { .. } => "zscore",
        }
    }
}

/// A (height, width) pair written as one number (both) or `[h, w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    Same(usize),
    Each([usize; 2]),
}

impl Pair {
    pub fn one() -> Pair {
        Pair::Same(1)
    }
    pub fn zero() -> Pair {
        Pair::Same(0)
    }
    /// `[height, width]`.
    pub fn hw(self) -> [usize; 2] {
        match self {
            Pair::Same(v) => [v, v],
            Pair::Each(hw) => hw,
        }
    }
}

/// Padding of a convolution or pooling layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    /// `"same"`, `"valid"` or `"full"`.
    Named(PaddingMode),
    /// The same amount on every side.
    Uniform(usize),
    /// `[h, w]` (symmetric) or `[top, left, bottom, right]`.
    Explicit(Vec<usize>),
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Named(PaddingMode::Same)
    }
}

impl Padding {
    pub fn valid() -> Padding {
        Padding::Named(PaddingMode::Valid)
    }
}

/// The named paddings: `same` keeps ⌈in/stride⌉ (Keras/TensorFlow rule, extra pixel at the
/// bottom/right), `valid` adds none, `full` adds `kernel − 1` per side (the output grows by
/// `kernel − 1`: the galeone CAE's "pad by 2k" for a kernel of side 2k+1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    Same,
    Valid,
    Full,
}

/// How `upsample` fills new pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsampleMode {
    #[default]
    Nearest,
    Bilinear,
}

/// An activation function, written `"relu"`, `"leaky_relu"` (slope 0.01), `"leaky_relu(0.2)"`,
/// `"elu"`, `"elu(0.5)"`, `"gelu"`, `"sigmoid"`, `"tanh"` or `"identity"`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    LeakyRelu(f64),
    Elu(f64),
    Gelu,
    Sigmoid,
    Tanh,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => write!(f, "identity"),
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu(s) => write!(f, "leaky_relu({s})"),
            Activation::Elu(a) => write!(f, "elu({a})"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Tanh => write!(f, "tanh"),
        }
    }
}

impl FromStr for Activation {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, arg) = split_call(s)?;
        let arg_or = |default: f64| -> Result<f64, InvalidValue> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        InvalidValue::new("activation", s, format!("{} is not a number", quote(a)))
                    }),
            }
        };
        let no_arg = |act: Activation| match arg {
            None => Ok(act),
            Some(_) => Err(InvalidValue::new("activation", name, "takes no argument")),
        };
        match name {
            "identity" | "linear" | "none" => no_arg(Activation::Identity),
            "relu" => no_arg(Activation::Relu),
            "leaky_relu" => Ok(Activation::LeakyRelu(arg_or(0.01)?)),
            "elu" => Ok(Activation::Elu(arg_or(1.0)?)),
            "gelu" => no_arg(Activation::Gelu),
            "sigmoid" => no_arg(Activation::Sigmoid),
            "tanh" => no_arg(Activation::Tanh),
            other => Err(InvalidValue::new(
                "unknown activation",
                other,
                "expected relu, leaky_relu(slope), elu(alpha), gelu, sigmoid, tanh or identity",
            )),
        }
    }
}

/// Splits `name(arg)` into its parts; a bare `name` has no argument.
fn split_call(s: &str) -> Result<(&str, Option<&str>), InvalidValue> {
    match s.split_once('(') {
        None => Ok((s, None)),
        Some((name, rest)) => {
            let arg = rest
                .strip_suffix(')')
                .ok_or_else(|| InvalidValue::new("setting", s, "missing closing parenthesis"))?;
            Ok((name.trim(), Some(arg.trim())))
        }
    }
}

impl Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A kernel penalty added to the loss: `"l1(1e-5)"` adds λ·Σ|w|, `"l2(1e-4)"` adds λ·Σw²
/// (Keras' `kernel_regularizer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regularizer {
    L1(f64),
    L2(f64),
}

impl fmt::Display for Regularizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Regularizer::L1(l) => write!(f, "l1({l})"),
            Regularizer::L2(l) => write!(f, "l2({l})"),
        }
    }
}

impl FromStr for Regularizer {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = split_call(s.trim())?;
        let weight = match arg {
            Some(a) => a
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    InvalidValue::new(
                        "regularizer",
                        s,
                        format!("{} is not a non-negative number", quote(a)),
                    )
                })?,
            None => {
                return Err(InvalidValue::new(
                    "regularizer",
                    s,
                    "write l1(weight) or l2(weight)",
                ));
            }
        };
        match name {
            "l1" => Ok(Regularizer::L1(weight)),
            "l2" => Ok(Regularizer::L2(weight)),
            other => Err(InvalidValue::new(
                "unknown regularizer",
                other,
                "expected l1(weight) or l2(weight)",
            )),
        }
    }
}

impl Serialize for Regularizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Regularizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_parse_with_and_without_arguments() {
        assert_eq!("relu".parse::<Activation>(), Ok(Activation::Relu));
        assert_eq!(
            "leaky_relu".parse::<Activation>(),
            Ok(Activation::LeakyRelu(0.01))
        );
        assert_eq!(
            "leaky_relu(0.2)".parse::<Activation>(),
            Ok(Activation::LeakyRelu(0.2))
        );
        assert_eq!("elu".parse::<Activation>(), Ok(Activation::Elu(1.0)));
        assert!("relu(2)".parse::<Activation>().is_err());
        assert!("leaky_relu(x)".parse::<Activation>().is_err());
        let err = "swish".parse::<Activation>().unwrap_err().to_string();
        assert!(err.contains("unknown activation 'swish'"), "{err}");
    }

    #[test]
    fn regularizers_parse() {
        assert_eq!("l2(1e-4)".parse::<Regularizer>(), Ok(Regularizer::L2(1e-4)));
        assert_eq!("l1(0.5)".parse::<Regularizer>(), Ok(Regularizer::L1(0.5)));
        assert!("l2".parse::<Regularizer>().is_err());
        assert!("l3(1)".parse::<Regularizer>().is_err());
        assert!("l2(-1)".parse::<Regularizer>().is_err());
    }

    #[test]
    fn layers_read_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct L {
            layer: Vec<LayerSpec>,
        }
        let l: L = toml::from_str(
            r#"
            [[layer]]
            type = "conv"
            filters = 8
            kernel = [3, 5]
            padding = [1, 2]
            activation = "leaky_relu(0.1)"
            kernel_regularizer = "l2(0.001)"
            [[layer]]
            type = "max_pool"
            size = 2
            "#,
        )
        .unwrap();
        match &l.layer[0] {
            LayerSpec::Conv {
                filters,
                kernel,
                stride,
                padding,
                activation,
                bias,
                kernel_regularizer,
                ..
            } => {
                assert_eq!(*filters, 8);
                assert_eq!(kernel.hw(), [3, 5]);
                assert_eq!(stride.hw(), [1, 1]);
                assert_eq!(*padding, Padding::Explicit(vec![1, 2]));
                assert_eq!(*activation, Activation::LeakyRelu(0.1));
                assert!(*bias);
                assert_eq!(*kernel_regularizer, Some(Regularizer::L2(0.001)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            l.layer[1],
            LayerSpec::MaxPool {
                size: Pair::Same(2),
                stride: None,
                padding: Padding::valid()
            }
        );
    }

    #[test]
    fn unknown_layer_fields_and_types_are_rejected() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct L {
            layer: Vec<LayerSpec>,
        }
        let err = toml::from_str::<L>(
            "[[layer]]\ntype = \"conv\"\nfilters = 8\nkernel = 3\nfilterz = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("filterz"), "{err}");
        let err = toml::from_str::<L>("[[layer]]\ntype = \"convolution\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("convolution"), "{err}");
    }
}
