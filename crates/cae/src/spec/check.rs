//! Checks an [`ArchSpec`] against an input shape and resolves it into a [`ValidSpec`]: every
//! layer with its explicit paddings, input/output shapes and parameter count, plus the implicit
//! flatten/reshape steps around dense layers. The model builder only ever sees this plan.

use super::layer::{Activation, LayerSpec, Padding, PaddingMode, Regularizer, UpsampleMode};
use super::shape::{self, Shape};
use super::{ArchSpec, SpecError};
use crate::data::ImageShape;
use crate::quote::quote;

/// Encoder or decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Encoder,
    Decoder,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
        })
    }
}

/// One resolved layer: everything needed to build it, nothing left to infer.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerPlan {
    Conv {
        in_channels: usize,
        filters: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        /// top, left, bottom, right
        padding: [usize; 4],
        activation: Activation,
        bias: bool,
        regularizer: Option<Regularizer>,
    },
    ConvTranspose {
        in_channels: usize,
        filters: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        /// symmetric [h, w]
        padding: [usize; 2],
        output_padding: [usize; 2],
        activation: Activation,
        bias: bool,
        regularizer: Option<Regularizer>,
    },
    MaxPool {
        size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    },
    AvgPool {
        size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    },
    Upsample {
        factor: [usize; 2],
        mode: UpsampleMode,
    },
    Dense {
        inputs: usize,
        units: usize,
        activation: Activation,
        bias: bool,
        regularizer: Option<Regularizer>,
    },
    BatchNorm {
        features: usize,
    },
    Dropout {
        rate: f64,
    },
    Activation(Activation),
    /// The input and its per-pixel z-score against the training images (`channels` in,
    /// twice as many out); the statistics are buffers of `channels × height × width`.
    Zscore {
        channels: usize,
        height: usize,
        width: usize,
        floor: f64,
    },
    /// Implicit: a volume becomes a vector before a dense layer.
    Flatten,
    /// Implicit: a vector becomes a volume before a spatial layer.
    Reshape {
        c: usize,
        h: usize,
        w: usize,
    },
    /// Keeps the volume in `slot` (numbered in spec order) for a later [`LayerPlan::Concat`].
    Save {
        slot: usize,
        name: String,
    },
    /// Appends the `channels` of the volume in `slot` to the flow's.
    Concat {
        slot: usize,
        name: String,
        channels: usize,
    },
}

impl LayerPlan {
    /// The name shown in tables.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerPlan::Conv { .. } => "conv",
            LayerPlan::ConvTranspose { .. } => "conv_transpose",
            LayerPlan::MaxPool { .. } => "max_pool",
            LayerPlan::AvgPool { .. } => "avg_pool",
            LayerPlan::Upsample { .. } => "upsample",
            LayerPlan::Dense { .. } => "dense",
            LayerPlan::BatchNorm { .. } => "batch_norm",
            LayerPlan::Dropout { .. } => "dropout",
            LayerPlan::Activation(_) => "activation",
            LayerPlan::Flatten => "flatten",
            LayerPlan::Reshape { .. } => "reshape",
            LayerPlan::Save { .. } => "save",
            LayerPlan::Concat { .. } => "concat",
            LayerPlan::Zscore { .. } => "zscore",
        }
    }

    /// Trainable parameters.
    pub fn params(&self) -> usize {
        match *self {
            LayerPlan::Conv {
                in_channels,
                filters,
                kernel,
                bias,
                ..
            }
            | LayerPlan::ConvTranspose {
                in_channels,
                filters,
                kernel,
                bias,
                ..
            } => in_channels
                .saturating_mul(filters)
                .saturating_mul(kernel[0] * kernel[1])
                .saturating_add(if bias { filters } else { 0 }),
            LayerPlan::Dense {
                inputs,
                units,
                bias,
                ..
            } => inputs
                .saturating_mul(units)
                .saturating_add(if bias { units } else { 0 }),
            LayerPlan::BatchNorm { features } => features.saturating_mul(2),
            _ => 0,
        }
    }
}

/// A resolved layer with its place and shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLayer {
    pub part: Part,
    /// 1-based index of the user's layer in its list; `None` for implicit flatten/reshape.
    pub index: Option<usize>,
    pub plan: LayerPlan,
    pub input: Shape,
    pub output: Shape,
}

/// A spec checked against an input shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSpec {
    /// The spec as resolved (parameters substituted); stored in run directories.
    pub spec: ArchSpec,
    pub input: ImageShape,
    pub encoder: Vec<PlannedLayer>,
    pub decoder: Vec<PlannedLayer>,
}

impl ValidSpec {
    /// The code: what the encoder outputs.
    pub fn bottleneck(&self) -> Shape {
        self.encoder
            .last()
            .map(|l| l.output)
            .unwrap_or(input_shape(self.input))
    }

    pub fn total_params(&self) -> usize {
        self.layers()
            .map(|l| l.plan.params())
            .fold(0, usize::saturating_add)
    }

    /// Values a model holds besides its parameters: the running mean and variance of every
    /// batch norm (`Module::num_params` counts them, the spec's parameter count does not).
    pub fn total_buffers(&self) -> usize {
        self.layers()
            .map(|l| match l.plan {
                LayerPlan::BatchNorm { features } => 2 * features,
                LayerPlan::Zscore {
                    channels,
                    height,
                    width,
                    ..
                } => 2 * channels * height * width,
                _ => 0,
            })
            .sum()
    }

    /// Input values per code value.
    pub fn compression_ratio(&self) -> f64 {
        self.input.len() as f64 / self.bottleneck().len() as f64
    }

    pub fn layers(&self) -> impl Iterator<Item = &PlannedLayer> {
        self.encoder.iter().chain(self.decoder.iter())
    }

    /// The shape of the model's output for one image.
    pub fn output(&self) -> ImageShape {
        ImageShape {
            channels: self.spec.output_channels.unwrap_or(self.input.channels),
            ..self.input
        }
    }

    /// The activation the model's output comes out of: the decoder's last one (a sigmoid bounds
    /// outputs to (0, 1), which BCE and focal losses need).
    pub fn output_activation(&self) -> Option<crate::spec::Activation> {
        self.decoder.iter().rev().find_map(|l| match l.plan {
            LayerPlan::Conv { activation, .. }
            | LayerPlan::ConvTranspose { activation, .. }
            | LayerPlan::Dense { activation, .. }
            | LayerPlan::Activation(activation) => Some(activation),
            _ => None,
        })
    }

    /// The same resolved spec checked on another input (a training crop, a larger image).
    /// A spec with a `zscore` layer holds per-pixel statistics of its own size and takes no
    /// other.
    pub fn at(&self, input: ImageShape) -> Result<ValidSpec, SpecError> {
        if let Some(l) = self.zscore()
            && (input.height, input.width) != (self.input.height, self.input.width)
        {
            return Err(SpecError::Invalid(format!(
                "{} layer {} (zscore) holds per-pixel statistics of {}x{} images and cannot run on {}x{} images; \
                 give it images of its training size (--resize {}x{})",
                l.part,
                l.index.unwrap_or(1),
                self.input.height,
                self.input.width,
                input.height,
                input.width,
                self.input.height,
                self.input.width,
            )));
        }
        check(self.spec.clone(), input)
    }

    /// The `zscore` layer, if the spec has one (always the encoder's first).
    pub fn zscore(&self) -> Option<&PlannedLayer> {
        self.encoder
            .first()
            .filter(|l| matches!(l.plan, LayerPlan::Zscore { .. }))
    }

    /// True for a segmentation network (the spec sets `output_channels`): it maps an image to a
    /// map of its own (an anomaly map), not to a reconstruction.
    pub fn is_segmentation(&self) -> bool {
        self.spec.output_channels.is_some()
    }
}

/// What the decoder must give back: the input's size with `channels` (default the input's).
fn output_shape(input: ImageShape, channels: Option<usize>) -> Shape {
    Shape::Volume {
        c: channels.unwrap_or(input.channels),
        h: input.height,
        w: input.width,
    }
}

fn input_shape(input: ImageShape) -> Shape {
    Shape::Volume {
        c: input.channels,
        h: input.height,
        w: input.width,
    }
}

/// Walks both layer lists, resolving paddings and shapes; the first problem is the error.
pub(super) fn check(spec: ArchSpec, input: ImageShape) -> Result<ValidSpec, SpecError> {
    if input.channels == 0 || input.height == 0 || input.width == 0 {
        return Err(SpecError::Invalid(format!(
            "input {input} has an empty dimension"
        )));
    }
    check_size("input", input_shape(input)).map_err(SpecError::Invalid)?;
    if spec.encoder.is_empty() {
        return Err(SpecError::Invalid("the encoder has no layers".into()));
    }
    if spec.decoder.is_empty() {
        return Err(SpecError::Invalid("the decoder has no layers".into()));
    }
    let mut planner = Planner {
        shape: input_shape(input),
        flattened: None,
        saved: Vec::new(),
    };
    let encoder = planner.plan_part(Part::Encoder, &spec.encoder)?;
    let decoder = planner.plan_part(Part::Decoder, &spec.decoder)?;
    if spec.output_channels == Some(0) {
        return Err(SpecError::Invalid(
            "output_channels = 0: the decoder must give back at least 1 channel".into(),
        ));
    }
    let expected = output_shape(input, spec.output_channels);
    if planner.shape != expected {
        let n = spec.decoder.len();
        let wanted = match spec.output_channels {
            Some(c) if c != input.channels => {
                format!("the output is {expected} (output_channels = {c})")
            }
            _ => format!("the input is {expected}"),
        };
        return Err(SpecError::Invalid(format!(
            "the decoder ends at {} but {wanted}: decoder layer {n} ({}) must give back that shape",
            planner.shape,
            spec.decoder[n - 1].kind()
        )));
    }
    let valid = ValidSpec {
        spec,
        input,
        encoder,
        decoder,
    };
    if valid.total_params() > 1 << 31 {
        return Err(SpecError::Invalid(format!(
            "{} parameters is more than this tool handles (2^31)",
            valid.total_params()
        )));
    }
    Ok(valid)
}

struct Planner {
    shape: Shape,
    /// The last volume flattened before a dense layer: where a later vector reshapes back to.
    flattened: Option<Shape>,
    /// Names and `[c, h, w]` of the volumes `save` layers kept so far, by slot.
    saved: Vec<(String, [usize; 3])>,
}

impl Planner {
    fn plan_part(
        &mut self,
        part: Part,
        layers: &[LayerSpec],
    ) -> Result<Vec<PlannedLayer>, SpecError> {
        let mut out = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let at = format!("{part} layer {} ({})", i + 1, layer.kind());
            let err = |m: String| SpecError::Invalid(format!("{at}: {m}"));
            // Implicit flatten / reshape around dense layers.
            let spatial = !matches!(
                layer,
                LayerSpec::Dense { .. }
                    | LayerSpec::BatchNorm {}
                    | LayerSpec::Dropout { .. }
                    | LayerSpec::Activation { .. }
            );
            match (self.shape, layer) {
                (Shape::Volume { .. }, LayerSpec::Dense { .. }) => {
                    self.flattened = Some(self.shape);
                    out.push(self.implicit(
                        part,
                        LayerPlan::Flatten,
                        Shape::Vector(self.shape.len()),
                    ));
                }
                (Shape::Vector(n), _) if spatial => {
                    let target = self.flattened.filter(|f| f.len() == n).ok_or_else(|| {
                        err(format!(
                            "needs an image volume but gets a vector of {n} values; give the dense layer before it \
                             `shape = \"CxHxW\"` with C·H·W = {n}"
                        ))
                    })?;
                    if let Shape::Volume { c, h, w } = target {
                        out.push(self.implicit(part, LayerPlan::Reshape { c, h, w }, target));
                    }
                }
                _ => {}
            }
            let input = self.shape;
            let (plan, output) = match layer {
                LayerSpec::Save { name } => self.plan_save(name, input),
                LayerSpec::Concat { from } => self.plan_concat(from, input),
                LayerSpec::Zscore { .. } if part != Part::Encoder || i > 0 => Err(
                    "only the first encoder layer may be a zscore (it compares the input itself with the training images)"
                        .into(),
                ),
                _ => plan_layer(layer, input),
            }
            .map_err(err)?;
            check_size("output", output).map_err(err)?;
            out.push(PlannedLayer {
                part,
                index: Some(i + 1),
                plan,
                input,
                output,
            });
            self.shape = output;
            // A dense layer with `shape` reshapes its output right away.
            if let LayerSpec::Dense { shape: Some(s), .. } = layer {
                let target = ImageShape::parse(s).map_err(|e| err(format!("shape: {e}")))?;
                let c = target.channels;
                let (h, w) = (target.height, target.width);
                out.push(self.implicit(
                    part,
                    LayerPlan::Reshape { c, h, w },
                    Shape::Volume { c, h, w },
                ));
            }
        }
        Ok(out)
    }

    /// A `save`: the name must be new, the flow a volume (a concat joins along channels).
    fn plan_save(&mut self, name: &str, input: Shape) -> Result<(LayerPlan, Shape), String> {
        if name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.saved.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "name {} is already saved by an earlier layer; give each save its own name",
                quote(name)
            ));
        }
        let Shape::Volume { c, h, w } = input else {
            return Err(format!(
                "needs an image volume but gets a vector of {input} values"
            ));
        };
        let slot = self.saved.len();
        self.saved.push((name.to_string(), [c, h, w]));
        let name = name.to_string();
        Ok((LayerPlan::Save { slot, name }, input))
    }

    /// A `concat`: joins a volume saved earlier, of the flow's height and width.
    fn plan_concat(&self, from: &str, input: Shape) -> Result<(LayerPlan, Shape), String> {
        let Some(slot) = self.saved.iter().position(|(n, _)| n == from) else {
            // The first few names are enough to spot a typo; a spec may save many.
            let mut known: Vec<String> = self
                .saved
                .iter()
                .take(8)
                .map(|(n, _)| quote(n).to_string())
                .collect();
            if self.saved.len() > known.len() {
                known.push(format!("and {} more", self.saved.len() - known.len()));
            }
            return Err(if known.is_empty() {
                format!(
                    "from = {}, but no earlier layer saves a volume (add a `save` layer with that name)",
                    quote(from)
                )
            } else {
                format!(
                    "from = {} is not saved by an earlier layer (saved: {})",
                    quote(from),
                    known.join(", ")
                )
            });
        };
        let [kept, kh, kw] = self.saved[slot].1;
        let Shape::Volume { c, h, w } = input else {
            return Err(format!(
                "needs an image volume but gets a vector of {input} values"
            ));
        };
        if (h, w) != (kh, kw) {
            return Err(format!(
                "the flow is {h}x{w} (HxW) but {} was saved at {kh}x{kw}; a concat needs both at the same size",
                quote(from)
            ));
        }
        let plan = LayerPlan::Concat {
            slot,
            name: from.to_string(),
            channels: kept,
        };
        Ok((plan, Shape::Volume { c: c + kept, h, w }))
    }

    fn implicit(&mut self, part: Part, plan: LayerPlan, output: Shape) -> PlannedLayer {
        let input = self.shape;
        self.shape = output;
        PlannedLayer {
            part,
            index: None,
            plan,
            input,
            output,
        }
    }
}

/// The largest kernel, stride, dilation, pooling window, upsampling factor or padding accepted:
/// far beyond any real model, small enough that no shape arithmetic can overflow.
const MAX_WINDOW: usize = 1 << 20;

/// The most values one layer may output per image (1 GiB of f32): a spec that asks for more is
/// refused here instead of failing to allocate once training starts.
pub const MAX_LAYER_VALUES: usize = 1 << 28;

fn positive(name: &str, v: [usize; 2]) -> Result<(), String> {
    if v[0] == 0 || v[1] == 0 {
        return Err(format!("{name} must be at least 1, got {v:?}"));
    }
    at_most(name, &v)
}

fn at_most(name: &str, values: &[usize]) -> Result<(), String> {
    match values.iter().find(|&&v| v > MAX_WINDOW) {
        Some(v) => Err(format!(
            "{name} {v} is more than this tool handles (at most {MAX_WINDOW})"
        )),
        None => Ok(()),
    }
}

/// Values per image of `shape`, when it is within [`MAX_LAYER_VALUES`].
fn check_size(what: &str, shape: Shape) -> Result<(), String> {
    let count = match shape {
        Shape::Volume { c, h, w } => c.checked_mul(h).and_then(|v| v.checked_mul(w)),
        Shape::Vector(n) => Some(n),
    };
    match count {
        Some(n) if n <= MAX_LAYER_VALUES => Ok(()),
        Some(n) => Err(format!(
            "{what} {shape} holds {n} values per image, more than this tool handles (2^28)"
        )),
        None => Err(format!(
            "{what} {shape} holds more than 2^64 values per image, more than this tool handles \
             (2^28)"
        )),
    }
}

/// Explicit paddings as (top, left, bottom, right).
fn explicit_padding(values: &[usize]) -> Result<[usize; 4], String> {
    match *values {
        [h, w] => Ok([h, w, h, w]),
        [t, l, b, r] => Ok([t, l, b, r]),
        _ => Err(format!(
            "padding {values:?}: give one number, [h, w] or [top, left, bottom, right]"
        )),
    }
}

/// Resolves `padding` for a window layer over `(h, w)`.
fn window_padding(
    padding: &Padding,
    hw: (usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[usize; 4], String> {
    let pad = match padding {
        Padding::Named(PaddingMode::Valid) => [0; 4],
        Padding::Named(PaddingMode::Same) => {
            let (t, b) = shape::same_padding(hw.0, kernel[0], stride[0], dilation[0]);
            let (l, r) = shape::same_padding(hw.1, kernel[1], stride[1], dilation[1]);
            [t, l, b, r]
        }
        Padding::Named(PaddingMode::Full) => {
            let (t, b) = shape::full_padding(kernel[0], dilation[0]);
            let (l, r) = shape::full_padding(kernel[1], dilation[1]);
            [t, l, b, r]
        }
        Padding::Uniform(p) => [*p; 4],
        Padding::Explicit(v) => explicit_padding(v)?,
    };
    at_most("padding", &pad)?;
    Ok(pad)
}

fn window_out(
    input: (usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 4],
    c: usize,
) -> Result<Shape, String> {
    let h = shape::conv_out(input.0, kernel[0], stride[0], dilation[0], (pad[0], pad[2]));
    let w = shape::conv_out(input.1, kernel[1], stride[1], dilation[1], (pad[1], pad[3]));
    match (h, w) {
        (Some(h), Some(w)) => Ok(Shape::Volume { c, h, w }),
        _ => Err(format!(
            "input {}x{} (padded {}x{}) is smaller than the {}x{} window",
            input.0,
            input.1,
            input.0 + pad[0] + pad[2],
            input.1 + pad[1] + pad[3],
            dilation[0] * (kernel[0] - 1) + 1,
            dilation[1] * (kernel[1] - 1) + 1
        )),
    }
}

fn plan_layer(layer: &LayerSpec, input: Shape) -> Result<(LayerPlan, Shape), String> {
    let volume = || match input {
        Shape::Volume { c, h, w } => Ok((c, h, w)),
        Shape::Vector(_) => Err("needs an image volume".to_string()),
    };
    match layer {
        LayerSpec::Conv {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            activation,
            bias,
            kernel_regularizer,
        } => {
            let (c, h, w) = volume()?;
            let (kernel, stride, dilation) = (kernel.hw(), stride.hw(), dilation.hw());
            if *filters == 0 {
                return Err("filters must be at least 1".into());
            }
            positive("kernel", kernel)?;
            positive("stride", stride)?;
            positive("dilation", dilation)?;
            let pad = window_padding(padding, (h, w), kernel, stride, dilation)?;
            let output = window_out((h, w), kernel, stride, dilation, pad, *filters)?;
            let plan = LayerPlan::Conv {
                in_channels: c,
                filters: *filters,
                kernel,
                stride,
                dilation,
                padding: pad,
                activation: *activation,
                bias: *bias,
                regularizer: *kernel_regularizer,
            };
            Ok((plan, output))
        }
        LayerSpec::ConvTranspose {
            filters,
            kernel,
            stride,
            padding,
            output_padding,
            activation,
            bias,
            kernel_regularizer,
        } => {
            let (c, h, w) = volume()?;
            let (kernel, stride, asked) = (kernel.hw(), stride.hw(), output_padding.hw());
            let mut output_padding = asked;
            if *filters == 0 {
                return Err("filters must be at least 1".into());
            }
            positive("kernel", kernel)?;
            positive("stride", stride)?;
            let pad = match padding {
                Padding::Named(PaddingMode::Valid) => [0, 0],
                Padding::Named(PaddingMode::Same) => {
                    let (ph, oh) = shape::conv_transpose_same(kernel[0], stride[0], 1);
                    let (pw, ow) = shape::conv_transpose_same(kernel[1], stride[1], 1);
                    output_padding = [output_padding[0] + oh, output_padding[1] + ow];
                    [ph, pw]
                }
                Padding::Named(PaddingMode::Full) => {
                    return Err("padding \"full\" is not defined for a transposed convolution (use same, valid or numbers)".into());
                }
                Padding::Uniform(p) => {
                    at_most("padding", &[*p])?;
                    [*p, *p]
                }
                Padding::Explicit(v) => match explicit_padding(v)? {
                    [t, l, b, r] if t == b && l == r => {
                        at_most("padding", &[t, l])?;
                        [t, l]
                    }
                    _ => {
                        return Err(format!(
                            "padding {v:?}: a transposed convolution needs the same padding on opposite sides"
                        ));
                    }
                },
            };
            for axis in 0..2 {
                if output_padding[axis] >= stride[axis] {
                    // Over only because `same` added its share: say so, not what was not written.
                    return Err(if asked[axis] < stride[axis] {
                        format!(
                            "padding \"same\" with kernel {kernel:?} at stride {stride:?} needs output_padding \
                             {output_padding:?}, but it must be smaller than the stride: use an odd kernel, \
                             a larger stride, or explicit padding"
                        )
                    } else {
                        format!(
                            "output_padding {output_padding:?} must be smaller than the stride {stride:?}"
                        )
                    });
                }
            }
            let oh =
                shape::conv_transpose_out(h, kernel[0], stride[0], 1, pad[0], output_padding[0]);
            let ow =
                shape::conv_transpose_out(w, kernel[1], stride[1], 1, pad[1], output_padding[1]);
            let (Some(oh), Some(ow)) = (oh, ow) else {
                return Err(format!("padding {pad:?} removes the whole {h}x{w} output"));
            };
            let plan = LayerPlan::ConvTranspose {
                in_channels: c,
                filters: *filters,
                kernel,
                stride,
                padding: pad,
                output_padding,
                activation: *activation,
                bias: *bias,
                regularizer: *kernel_regularizer,
            };
            Ok((
                plan,
                Shape::Volume {
                    c: *filters,
                    h: oh,
                    w: ow,
                },
            ))
        }
        LayerSpec::MaxPool {
            size,
            stride,
            padding,
        }
        | LayerSpec::AvgPool {
            size,
            stride,
            padding,
        } => {
            let (c, h, w) = volume()?;
            let size = size.hw();
            let stride = stride.map(|s| s.hw()).unwrap_or(size);
            positive("size", size)?;
            positive("stride", stride)?;
            if matches!(padding, Padding::Named(PaddingMode::Full)) {
                return Err(
                    "padding \"full\" is not defined for pooling (use valid or same)".into(),
                );
            }
            let pad = window_padding(padding, (h, w), size, stride, [1, 1])?;
            if pad[0].max(pad[2]) * 2 > size[0] || pad[1].max(pad[3]) * 2 > size[1] {
                return Err(format!(
                    "padding {pad:?} is more than half the {size:?} window"
                ));
            }
            let output = window_out((h, w), size, stride, [1, 1], pad, c)?;
            let plan = if matches!(layer, LayerSpec::MaxPool { .. }) {
                LayerPlan::MaxPool {
                    size,
                    stride,
                    padding: pad,
                }
            } else {
                LayerPlan::AvgPool {
                    size,
                    stride,
                    padding: pad,
                }
            };
            Ok((plan, output))
        }
        LayerSpec::Upsample { factor, mode } => {
            let (c, h, w) = volume()?;
            let factor = factor.hw();
            positive("factor", factor)?;
            Ok((
                LayerPlan::Upsample {
                    factor,
                    mode: *mode,
                },
                Shape::Volume {
                    c,
                    h: h * factor[0],
                    w: w * factor[1],
                },
            ))
        }
        LayerSpec::Dense {
            units,
            shape,
            activation,
            bias,
            kernel_regularizer,
        } => {
            let units = match (units, shape) {
                (Some(_), Some(_)) => return Err("give either units or shape, not both".into()),
                (None, None) => {
                    return Err("give units (a vector) or shape = \"CxHxW\" (a volume)".into());
                }
                (Some(u), None) => *u,
                (None, Some(s)) => ImageShape::parse(s)
                    .map_err(|e| format!("shape: {e}"))?
                    .len(),
            };
            if units == 0 {
                return Err("units must be at least 1".into());
            }
            let inputs = input.len();
            let plan = LayerPlan::Dense {
                inputs,
                units,
                activation: *activation,
                bias: *bias,
                regularizer: *kernel_regularizer,
            };
            Ok((plan, Shape::Vector(units)))
        }
        LayerSpec::BatchNorm {} => {
            let features = match input {
                Shape::Volume { c, .. } => c,
                Shape::Vector(n) => n,
            };
            Ok((LayerPlan::BatchNorm { features }, input))
        }
        LayerSpec::Dropout { rate } => {
            if !(0.0..1.0).contains(rate) {
                return Err(format!("rate must be in [0, 1), got {rate}"));
            }
            Ok((LayerPlan::Dropout { rate: *rate }, input))
        }
        LayerSpec::Activation { function } => Ok((LayerPlan::Activation(*function), input)),
        LayerSpec::Zscore { floor } => {
            if !(floor.is_finite() && *floor > 0.0) {
                return Err(format!("floor must be a positive number, got {floor}"));
            }
            let Shape::Volume { c, h, w } = input else {
                return Err(format!(
                    "needs an image volume but gets a vector of {input} values"
                ));
            };
            let plan = LayerPlan::Zscore {
                channels: c,
                height: h,
                width: w,
                floor: *floor,
            };
            Ok((plan, Shape::Volume { c: 2 * c, h, w }))
        }
        // Skip connections need the planner's record of saved volumes: `Planner::plan_part`.
        LayerSpec::Save { .. } | LayerSpec::Concat { .. } => {
            Err("a skip connection is planned with its saved volumes".into())
        }
    }
}
