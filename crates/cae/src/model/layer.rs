//! One layer of the autoencoder, built from a [`LayerPlan`], the [`Flow`] of values between
//! layers (an image volume or a vector), and the [`Saved`] volumes of skip connections.

use crate::kernels;
use crate::spec::{Activation as ActivationSpec, LayerPlan, Regularizer, UpsampleMode};
use burn::module::{Module, RunningState};
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::interpolate::{Interpolate2d, Interpolate2dConfig, InterpolateMode};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, EluConfig, LeakyReluConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor, TensorData};

/// Values between layers.
#[derive(Debug, Clone)]
pub enum Flow {
    /// `[batch, c, h, w]`
    Volume(Tensor<4>),
    /// `[batch, n]`
    Vector(Tensor<2>),
}

impl Flow {
    /// The volume; a vector becomes `[batch, n, 1, 1]` (never needed for a checked spec).
    pub fn into_volume(self) -> Tensor<4> {
        match self {
            Flow::Volume(t) => t,
            Flow::Vector(t) => t.unsqueeze_dims(&[2, 3]),
        }
    }

    /// Flattened to `[batch, values]`.
    pub fn into_flat(self) -> Tensor<2> {
        match self {
            Flow::Volume(t) => t.flatten(1, 3),
            Flow::Vector(t) => t,
        }
    }

    pub fn values_per_example(&self) -> usize {
        match self {
            Flow::Volume(t) => t.dims()[1..].iter().product(),
            Flow::Vector(t) => t.dims()[1],
        }
    }
}

/// A convolution followed by its activation.
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: Conv2d,
    pub activation: Activation,
    pub penalty: Penalty,
}

/// A transposed convolution followed by its activation.
#[derive(Module, Debug)]
pub struct ConvTransposeBlock {
    pub conv: ConvTranspose2d,
    pub activation: Activation,
    pub penalty: Penalty,
}

/// A dense layer followed by its activation.
#[derive(Module, Debug)]
pub struct DenseBlock {
    pub linear: Linear,
    pub activation: Activation,
    pub penalty: Penalty,
}

/// Kernel penalty weights (not trained, rebuilt from the spec).
#[derive(Module, Debug)]
pub struct Penalty {
    pub l1: f64,
    pub l2: f64,
}

impl Penalty {
    fn new(r: Option<Regularizer>) -> Penalty {
        match r {
            Some(Regularizer::L1(l)) => Penalty { l1: l, l2: 0.0 },
            Some(Regularizer::L2(l)) => Penalty { l1: 0.0, l2: l },
            None => Penalty { l1: 0.0, l2: 0.0 },
        }
    }

    fn of<const D: usize>(&self, w: Tensor<D>) -> Option<Tensor<1>> {
        let l1 = (self.l1 > 0.0).then(|| w.clone().abs().sum().mul_scalar(self.l1));
        let l2 = (self.l2 > 0.0).then(|| w.powi_scalar(2).sum().mul_scalar(self.l2));
        match (l1, l2) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
}

/// The per-pixel statistics of a `zscore` layer: buffers (like batch norm's running
/// statistics, never trained), set from the training images by [`Zscore::fit`] before the
/// first epoch and saved with the weights.
#[derive(Module, Debug)]
pub struct Zscore {
    /// `[c, h, w]` mean of the training images.
    pub mean: RunningState<Tensor<3>>,
    /// `[c, h, w]` standard deviation of the training images.
    pub std: RunningState<Tensor<3>>,
    pub floor: f64,
}

/// The z-score is clipped to ±`ZSCORE_CLIP` and divided by half of it: a value in [−2, 2],
/// on the scale of the image itself, that a far-off pixel cannot blow up.
pub const ZSCORE_CLIP: f32 = 8.0;

impl Zscore {
    fn new(channels: usize, height: usize, width: usize, floor: f64, device: &Device) -> Zscore {
        let shape = [channels, height, width];
        Zscore {
            mean: RunningState::new(Tensor::zeros(shape, device)),
            std: RunningState::new(Tensor::ones(shape, device)),
            floor,
        }
    }

    /// Sets the statistics: `mean` and `std` hold `c·h·w` values each, channel-major.
    pub fn fit(&mut self, mean: &[f32], std: &[f32]) {
        let value = self.mean.value();
        let (shape, device) = (value.dims(), value.device());
        let tensor = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), shape), &device);
        self.mean = RunningState::new(tensor(mean));
        self.std = RunningState::new(tensor(std));
    }

    /// `[batch, c, h, w]` in, `[batch, 2c, h, w]` out: the image, then its clipped z-score.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mean = self.mean.value().unsqueeze::<4>();
        let scale = self
            .std
            .value()
            .add_scalar(self.floor)
            .recip()
            .unsqueeze::<4>();
        let z = (x.clone() - mean)
            .mul(scale)
            .clamp(-ZSCORE_CLIP, ZSCORE_CLIP)
            .div_scalar(ZSCORE_CLIP / 2.0);
        Tensor::cat(vec![x, z], 1)
    }
}

/// `[c, h, w]` target of an implicit reshape.
#[derive(Module, Debug)]
pub struct Reshape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

/// The volumes `save` layers kept during one forward pass, by slot, for the `concat` layers
/// after them (the spec check guarantees every concat finds its volume, saved earlier).
#[derive(Debug, Default)]
pub struct Saved(Vec<Option<Tensor<4>>>);

impl Saved {
    fn keep(&mut self, slot: usize, x: Tensor<4>) {
        if self.0.len() <= slot {
            self.0.resize(slot + 1, None);
        }
        self.0[slot] = Some(x);
    }

    /// `x` with the volume in `slot` appended along channels; `x` alone if none was kept
    /// (never for a checked spec).
    fn join(&self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        match self.0.get(slot).and_then(Option::as_ref) {
            Some(kept) => Tensor::cat(vec![x, kept.clone()], 1),
            None => x,
        }
    }
}

/// Runs `layers` in order, fusing the pairs [`Layer::forward_fused`] can; `saved` carries skip
/// connections from one call to the next (encoder, then decoder).
pub fn run_layers(layers: &[Layer], x: Flow, saved: &mut Saved) -> Flow {
    let mut flow = x;
    let mut i = 0;
    while i < layers.len() {
        let (out, ran) = match &layers[i] {
            Layer::Save(slot) => {
                let v = flow.into_volume();
                saved.keep(*slot, v.clone());
                (Flow::Volume(v), 1)
            }
            Layer::Concat(slot) => (Flow::Volume(saved.join(*slot, flow.into_volume())), 1),
            layer => layer.forward_fused(layers.get(i + 1), flow),
        };
        flow = out;
        i += ran;
    }
    flow
}

/// One layer of an encoder or decoder.
#[derive(Module, Debug)]
pub enum Layer {
    Conv(ConvBlock),
    ConvTranspose(ConvTransposeBlock),
    Dense(DenseBlock),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    Upsample(Interpolate2d),
    BatchNorm(BatchNorm),
    Dropout(Dropout),
    Activation(Activation),
    /// Volume to vector (the value is unused; modules need a field).
    Flatten(usize),
    Reshape(Reshape),
    /// Keeps the volume in this slot of [`Saved`] (run by [`run_layers`]).
    Save(usize),
    /// Appends the volume in this slot of [`Saved`] along channels (run by [`run_layers`]).
    Concat(usize),
    Zscore(Zscore),
}

fn activation(a: ActivationSpec, device: &Device) -> Activation {
    let config = match a {
        ActivationSpec::Identity => ActivationConfig::Identity,
        ActivationSpec::Relu => ActivationConfig::Relu,
        ActivationSpec::LeakyRelu(s) => {
            ActivationConfig::LeakyRelu(LeakyReluConfig::new().with_negative_slope(s))
        }
        ActivationSpec::Elu(alpha) => ActivationConfig::Elu(EluConfig::new().with_alpha(alpha)),
        ActivationSpec::Gelu => ActivationConfig::Gelu,
        ActivationSpec::Sigmoid => ActivationConfig::Sigmoid,
        ActivationSpec::Tanh => ActivationConfig::Tanh,
    };
    config.init(device)
}

impl Layer {
    /// Builds the layer the plan describes.
    pub fn new(plan: &LayerPlan, device: &Device) -> Layer {
        match plan {
            LayerPlan::Conv {
                in_channels,
                filters,
                kernel,
                stride,
                dilation,
                padding,
                activation: a,
                bias,
                regularizer,
            } => {
                let [t, l, b, r] = *padding;
                let conv = Conv2dConfig::new([*in_channels, *filters], *kernel)
                    .with_stride(*stride)
                    .with_dilation(*dilation)
                    .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
                    .with_bias(*bias)
                    .init(device);
                Layer::Conv(ConvBlock {
                    conv,
                    activation: activation(*a, device),
                    penalty: Penalty::new(*regularizer),
                })
            }
            LayerPlan::ConvTranspose {
                in_channels,
                filters,
                kernel,
                stride,
                padding,
                output_padding,
                activation: a,
                bias,
                regularizer,
            } => {
                let conv = ConvTranspose2dConfig::new([*in_channels, *filters], *kernel)
                    .with_stride(*stride)
                    .with_padding(*padding)
                    .with_padding_out(*output_padding)
                    .with_bias(*bias)
                    .init(device);
                Layer::ConvTranspose(ConvTransposeBlock {
                    conv,
                    activation: activation(*a, device),
                    penalty: Penalty::new(*regularizer),
                })
            }
            LayerPlan::MaxPool {
                size,
                stride,
                padding: [t, l, b, r],
            } => Layer::MaxPool(
                MaxPool2dConfig::new(*size)
                    .with_strides(*stride)
                    .with_padding(PaddingConfig2d::Explicit(*t, *l, *b, *r))
                    .init(),
            ),
            LayerPlan::AvgPool {
                size,
                stride,
                padding: [t, l, b, r],
            } => Layer::AvgPool(
                AvgPool2dConfig::new(*size)
                    .with_strides(*stride)
                    .with_padding(PaddingConfig2d::Explicit(*t, *l, *b, *r))
                    .with_count_include_pad(false)
                    .init(),
            ),
            LayerPlan::Upsample { factor, mode } => {
                let mode = match mode {
                    UpsampleMode::Nearest => InterpolateMode::Nearest,
                    UpsampleMode::Bilinear => InterpolateMode::Linear,
                };
                Layer::Upsample(
                    Interpolate2dConfig::new()
                        .with_scale_factor(Some([factor[0] as f32, factor[1] as f32]))
                        .with_mode(mode)
                        .with_align_corners(false)
                        .init(),
                )
            }
            LayerPlan::Dense {
                inputs,
                units,
                activation: a,
                bias,
                regularizer,
            } => Layer::Dense(DenseBlock {
                linear: LinearConfig::new(*inputs, *units)
                    .with_bias(*bias)
                    .init(device),
                activation: activation(*a, device),
                penalty: Penalty::new(*regularizer),
            }),
            LayerPlan::BatchNorm { features } => {
                Layer::BatchNorm(BatchNormConfig::new(*features).init(device))
            }
            LayerPlan::Dropout { rate } => Layer::Dropout(DropoutConfig::new(*rate).init()),
            LayerPlan::Activation(a) => Layer::Activation(activation(*a, device)),
            LayerPlan::Flatten => Layer::Flatten(0),
            LayerPlan::Reshape { c, h, w } => Layer::Reshape(Reshape {
                c: *c,
                h: *h,
                w: *w,
            }),
            LayerPlan::Save { slot, .. } => Layer::Save(*slot),
            LayerPlan::Concat { slot, .. } => Layer::Concat(*slot),
            LayerPlan::Zscore {
                channels,
                height,
                width,
                floor,
            } => Layer::Zscore(Zscore::new(*channels, *height, *width, *floor, device)),
        }
    }

    /// Runs the layer. A skip connection's ends pass the flow on unchanged here: they need the
    /// pass's [`Saved`] volumes, which [`run_layers`] holds.
    pub fn forward(&self, x: Flow) -> Flow {
        match self {
            Layer::Conv(b) => Flow::Volume(kernels::conv2d_module(
                &b.conv,
                &b.activation,
                x.into_volume(),
            )),
            Layer::ConvTranspose(b) => Flow::Volume(kernels::conv_transpose2d_module(
                &b.conv,
                &b.activation,
                x.into_volume(),
            )),
            Layer::Dense(b) => Flow::Vector(b.activation.forward(b.linear.forward(x.into_flat()))),
            Layer::MaxPool(p) => Flow::Volume(kernels::max_pool2d_module(p, x.into_volume())),
            Layer::AvgPool(p) => Flow::Volume(p.forward(x.into_volume())),
            Layer::Upsample(u) => Flow::Volume(kernels::upsample_module(u, x.into_volume())),
            Layer::BatchNorm(bn) => batch_norm(bn, kernels::Act::Identity, x),
            Layer::Dropout(d) => match x {
                Flow::Volume(t) => Flow::Volume(d.forward(t)),
                Flow::Vector(t) => Flow::Vector(d.forward(t)),
            },
            Layer::Activation(a) => match x {
                Flow::Volume(t) => Flow::Volume(a.forward(t)),
                Flow::Vector(t) => Flow::Vector(a.forward(t)),
            },
            Layer::Flatten(_) => Flow::Vector(x.into_flat()),
            Layer::Reshape(r) => {
                let t = x.into_flat();
                let batch = t.dims()[0];
                Flow::Volume(t.reshape([batch, r.c, r.h, r.w]))
            }
            Layer::Save(_) | Layer::Concat(_) => x,
            Layer::Zscore(z) => Flow::Volume(z.forward(x.into_volume())),
        }
    }

    /// Runs this layer and, when it is a batch normalisation followed by an activation the
    /// kernels fuse ([`kernels::batch_norm_module`]), or a ×2 nearest upsample that the next layer's 3×3 `same`
    /// convolution can absorb ([`kernels::upsample_conv`]), that one too: returns the output
    /// and how many layers ran. The result is the two layers' to float rounding.
    pub fn forward_fused(&self, next: Option<&Layer>, x: Flow) -> (Flow, usize) {
        if let (Layer::BatchNorm(bn), Some(Layer::Activation(a))) = (self, next)
            && let Some(act) = kernels::fusable(a)
        {
            return (batch_norm(bn, act, x), 2);
        }
        if let (Layer::Upsample(up), Some(Layer::Conv(b))) = (self, next)
            && kernels::upsample_conv::fusable(up, &b.conv)
            && let Flow::Volume(v) = &x
        {
            let act = kernels::fusable(&b.activation);
            let fused = act.unwrap_or(kernels::Act::Identity);
            if let Some(y) = kernels::upsample_conv::forward(&b.conv, fused, v.clone()) {
                let y = if act.is_some() {
                    y
                } else {
                    b.activation.forward(y)
                };
                return (Flow::Volume(y), 2);
            }
        }
        (self.forward(x), 1)
    }

    /// This layer's kernel penalty, if it has a regularizer.
    pub fn penalty(&self) -> Option<Tensor<1>> {
        match self {
            Layer::Conv(b) => b.penalty.of(b.conv.weight.val()),
            Layer::ConvTranspose(b) => b.penalty.of(b.conv.weight.val()),
            Layer::Dense(b) => b.penalty.of(b.linear.weight.val()),
            _ => None,
        }
    }
}

/// `act(bn(x))` on a volume or a vector, through the fused kernels where they run.
fn batch_norm(bn: &BatchNorm, act: kernels::Act, x: Flow) -> Flow {
    match x {
        Flow::Volume(t) => Flow::Volume(kernels::batch_norm_module(bn, act, t)),
        Flow::Vector(t) => Flow::Vector(kernels::batch_norm_module(bn, act, t)),
    }
}
