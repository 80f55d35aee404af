//! Fast CPU convolution kernels for Burn's Flex backend, as a Burn backend extension.
//!
//! Burn 0.22's Flex convolutions are competitive forward, but their gradients run as generic
//! convolutions (the weight gradient convolves with the output gradient as a huge kernel) and
//! dominate a training step. [`ConvKernels`] adds `conv2d` and `conv_transpose2d` ops, with bias
//! and activation fused, that have a Flex implementation (im2col + gemm over cache-sized column
//! tiles [`conv`], transposed convolutions split into stride phases [`transposed`], direct
//! register-blocked loops for few output channels [`direct`], images spread over rayon) and an
//! `Autodiff<Flex>` implementation whose backward pass computes the input, weight and bias
//! gradients in one step ([`autodiff`]).
//!
//! [`conv2d`] and [`conv_transpose2d`] (and the `*_module` forms for Burn's modules) take and
//! return plain `Tensor<4>`s: on a Flex device (with or without autodiff) they run these
//! kernels; on any other device, or with `CAE_KERNELS=burn` in the environment, Burn's built-in
//! ops. Shapes the kernels do not handle (dtypes other than f32, groups) go to Burn's Flex ops.
//! Results match Burn's to float rounding (see the parity tests).

mod act;
mod autodiff;
mod bilinear;
mod conv;
mod conv_transpose;
mod direct;
mod flex;
mod im2col;
mod matmul;
mod memory;
mod norm;
mod phases;
mod pool;
#[cfg(test)]
mod tests;
mod transposed;
pub mod upsample_conv;

pub use act::Act;
pub use bilinear::upsample_module;
pub use memory::keep_freed_memory;

use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Backend, Dispatch, DispatchDevice, ExtensionType, Flex, TensorMetadata, backend_extension,
};
use burn::nn::BatchNorm;
use burn::nn::PaddingConfig2d;
use burn::nn::activation::Activation;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::pool::MaxPool2d;
use burn::tensor::DType;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use std::sync::OnceLock;

/// A convolution's optional bias (extension ops take no `Option` of a tensor).
#[derive(ExtensionType)]
pub enum Bias<B: Backend> {
    Add(FloatTensor<B>),
    Zero,
}

impl<B: Backend> Bias<B> {
    fn from_option(bias: Option<FloatTensor<B>>) -> Bias<B> {
        bias.map_or(Bias::Zero, Bias::Add)
    }

    fn into_option(self) -> Option<FloatTensor<B>> {
        match self {
            Bias::Add(b) => Some(b),
            Bias::Zero => None,
        }
    }
}

/// Convolutions with hand-written CPU kernels (Flex) and gradients (`Autodiff<Flex>`).
#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// `act(conv2d(x, weight, bias))`, conv2d as [`burn::tensor::module::conv2d`]:
    /// x `[n, cin, h, w]`, weight `[cout, cin, kh, kw]`, bias `[cout]`.
    fn cae_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] bias: Bias<Self>,
        options: ConvOptions<2>,
        act: Act,
    ) -> FloatTensor<Self>;

    /// `act(conv_transpose2d(x, weight, bias))`, as [`burn::tensor::module::conv_transpose2d`]:
    /// x `[n, cin, h, w]`, weight `[cin, cout, kh, kw]`, bias `[cout]`.
    fn cae_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] bias: Bias<Self>,
        options: ConvTransposeOptions<2>,
        act: Act,
    ) -> FloatTensor<Self>;

    /// `max_pool2d` as [`burn::tensor::module::max_pool2d`] (floor mode), x `[n, c, h, w]`.
    fn cae_max_pool2d(x: FloatTensor<Self>, options: MaxPoolOptions<2>) -> FloatTensor<Self>;

    /// The phase interleave of [`upsample_conv`]: `z [n, 4·cout, h + 1, w + 1]` (f32) →
    /// `[n, cout, 2h, 2w]`, `half = [h, w]` (see [`phases`]).
    fn cae_interleave_phases(z: FloatTensor<Self>, half: [usize; 2]) -> FloatTensor<Self>;

    /// `act(batch_norm(x))` over the batch's own statistics, as Burn's `batch_norm_train`
    /// followed by `act` ([`norm`]): x `[n, c, ...]`, gamma and beta `[c]`. Returns the output,
    /// the batch mean and the biased batch variance (`[c]` each, for the running statistics).
    fn cae_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `act(x · scale[c] + shift[c])` for x `[n, c, ...]`: batch normalisation with fixed
    /// statistics folded into one scale and shift per channel (inference).
    fn cae_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self>;
}

/// `act(t)` with the backend's own ops (for the shapes the kernels leave to Burn).
fn activate<B: Backend>(t: FloatTensor<B>, act: Act) -> FloatTensor<B> {
    match act {
        Act::Identity => t,
        Act::Relu => B::relu(t),
        Act::Sigmoid => B::sigmoid(t),
    }
}

/// [`ConvKernels::cae_batch_norm_train`] with the backend's own ops.
fn batch_norm_train_with<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    act: Act,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let r = B::batch_norm_train(x, gamma, beta, epsilon);
    (activate::<B>(r.output, act), r.mean, r.variance)
}

/// [`ConvKernels::cae_channel_affine`] with the backend's own ops.
fn channel_affine_with<B: Backend>(
    x: FloatTensor<B>,
    scale: FloatTensor<B>,
    shift: FloatTensor<B>,
    act: Act,
) -> FloatTensor<B> {
    let mut per_channel = vec![1; x.shape().num_dims()];
    if let Some(c) = per_channel.get_mut(1) {
        *c = scale.shape().num_elements();
    }
    let per_channel = burn::tensor::Shape::from(per_channel);
    let scale = B::float_reshape(scale, per_channel.clone());
    let shift = B::float_reshape(shift, per_channel);
    activate::<B>(B::float_add(B::float_mul(x, scale), shift), act)
}

impl ConvKernels for Flex {
    fn cae_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Bias<Self>,
        options: ConvOptions<2>,
        act: Act,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        match flex::conv_shape(&x, &weight, bias.as_ref(), &options) {
            Some(s) => flex::conv_forward(&flex::dense(x), &flex::dense(weight), bias, &s, act),
            None => activate::<Flex>(Flex::conv2d(x, weight, bias, options), act),
        }
    }

    fn cae_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Bias<Self>,
        options: ConvTransposeOptions<2>,
        act: Act,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        match flex::conv_transpose_shape(&x, &weight, bias.as_ref(), &options) {
            Some(s) => {
                let (x, w) = (flex::dense(x), flex::dense(weight));
                flex::conv_transpose_forward(&x, &w, bias, &s, act)
            }
            None => activate::<Flex>(Flex::conv_transpose2d(x, weight, bias, options), act),
        }
    }

    fn cae_interleave_phases(z: FloatTensor<Self>, half: [usize; 2]) -> FloatTensor<Self> {
        let z = flex::dense(z);
        let p = phases_of(&z, half);
        flex::tensor(
            phases::interleave(flex::values(&z), &p),
            &interleaved_dims(&p),
        )
    }

    fn cae_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match flex::norm_shape(&x, &gamma, &beta) {
            Some(s) => {
                let (x, gamma, beta) = (flex::dense(x), flex::dense(gamma), flex::dense(beta));
                let f = flex::batch_norm_forward(&x, &gamma, &beta, epsilon, &s, act);
                (f.y, f.mean, f.var)
            }
            None => batch_norm_train_with::<Flex>(x, gamma, beta, epsilon, act),
        }
    }

    fn cae_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        match flex::norm_shape(&x, &scale, &shift) {
            Some(s) => {
                let (x, scale, shift) = (flex::dense(x), flex::dense(scale), flex::dense(shift));
                let y = norm::affine(
                    flex::values(&x),
                    &s,
                    flex::values(&scale),
                    flex::values(&shift),
                    act,
                );
                flex::tensor(y, x.layout().shape())
            }
            None => channel_affine_with::<Flex>(x, scale, shift, act),
        }
    }

    fn cae_max_pool2d(x: FloatTensor<Self>, o: MaxPoolOptions<2>) -> FloatTensor<Self> {
        let dims = flex::dims4(&x);
        match dims.and_then(|d| Some((d, pool::PoolShape::new(d, &o)?))) {
            Some((d, s)) => flex::max_pool_forward(&flex::dense(x), d, &s),
            // Unreachable through `max_pool2d`, which sends these shapes to Burn's own op.
            None => {
                let pad = o.padding.map(|(begin, _)| begin);
                Flex::max_pool2d(x, o.kernel_size, o.stride, pad, o.dilation, o.ceil_mode)
            }
        }
    }
}

/// The phase sizes of `z` for [`ConvKernels::cae_interleave_phases`].
fn phases_of(z: &burn::backend::flex::FlexTensor, half: [usize; 2]) -> phases::Phases {
    let [batch, channels, _, _] = flex::dims4(z).unwrap_or_default();
    phases::Phases {
        batch,
        cout: channels / 4,
        half,
    }
}

/// `[n, cout, 2h, 2w]`, the shape [`ConvKernels::cae_interleave_phases`] returns.
fn interleaved_dims(p: &phases::Phases) -> [usize; 4] {
    [p.batch, p.cout, 2 * p.half[0], 2 * p.half[1]]
}

/// Whether `CAE_KERNELS=burn` asks for Burn's built-in convolutions everywhere.
pub fn disabled() -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var("CAE_KERNELS").is_ok_and(|v| v == "burn"))
}

/// Whether tensors on `device` run these kernels.
pub fn runs_on(device: &Device) -> bool {
    !disabled() && is_flex(device)
}

/// Whether `device` is flex (with or without autodiff).
fn is_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// `act(t)` with Burn's tensor API.
fn activate_tensor<const D: usize>(t: Tensor<D>, act: Act) -> Tensor<D> {
    match act {
        Act::Identity => t,
        Act::Relu => burn::tensor::activation::relu(t),
        Act::Sigmoid => burn::tensor::activation::sigmoid(t),
    }
}

/// `act(conv2d(x, weight, bias))`; Burn's built-ins where the kernels do not run.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    act: Act,
) -> Tensor<4> {
    if !runs_on(&x.device()) {
        return activate_tensor(burn::tensor::module::conv2d(x, weight, bias, options), act);
    }
    Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        Bias::from_option(bias.map(Tensor::into_dispatch)),
        options,
        act,
    ))
}

/// `act(conv_transpose2d(x, weight, bias))`; Burn's built-ins where the kernels do not run.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
    act: Act,
) -> Tensor<4> {
    if !runs_on(&x.device()) {
        let y = burn::tensor::module::conv_transpose2d(x, weight, bias, options);
        return activate_tensor(y, act);
    }
    Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_conv_transpose2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        Bias::from_option(bias.map(Tensor::into_dispatch)),
        options,
        act,
    ))
}

/// [`ConvKernels::cae_interleave_phases`] on tensors (only where [`runs_on`] holds).
fn interleave_phases(z: Tensor<4>, half: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_interleave_phases(
        z.into_dispatch(),
        half,
    ))
}

/// The activations the kernels fuse.
pub(crate) fn fusable(activation: &Activation) -> Option<Act> {
    match activation {
        Activation::Identity(_) => Some(Act::Identity),
        Activation::Relu(_) => Some(Act::Relu),
        Activation::Sigmoid(_) => Some(Act::Sigmoid),
        _ => None,
    }
}

/// `activation.forward(conv.forward(x))` through [`conv2d`]; the module keeps the parameters
/// (saved weights are unchanged). Padding other than explicit goes to Burn's module.
pub fn conv2d_module(conv: &Conv2d, activation: &Activation, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return activation.forward(conv.forward(x));
    };
    let padding = [(top, bottom), (left, right)];
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    let (w, b) = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
    match fusable(activation) {
        Some(act) => conv2d(x, w, b, options, act),
        None => activation.forward(conv2d(x, w, b, options, Act::Identity)),
    }
}

/// `activation.forward(conv.forward(x))` through [`conv_transpose2d`].
pub fn conv_transpose2d_module(
    conv: &ConvTranspose2d,
    activation: &Activation,
    x: Tensor<4>,
) -> Tensor<4> {
    let options = ConvTransposeOptions::new(
        conv.stride,
        conv.padding,
        conv.padding_out,
        conv.dilation,
        conv.groups,
    );
    let (w, b) = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
    match fusable(activation) {
        Some(act) => conv_transpose2d(x, w, b, options, act),
        None => activation.forward(conv_transpose2d(x, w, b, options, Act::Identity)),
    }
}

/// `max_pool2d(x, options)` through the kernels on Flex (f32, floor mode); Burn's otherwise.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    if !runs_on(&x.device()) || x.dtype() != DType::F32 || options.ceil_mode {
        return burn::tensor::module::max_pool2d(x, options);
    }
    Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_max_pool2d(
        x.into_dispatch(),
        options,
    ))
}

/// `pool.forward(x)` through [`max_pool2d`]; padding other than explicit goes to Burn's module.
pub fn max_pool2d_module(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = pool.padding else {
        return pool.forward(x);
    };
    let options = MaxPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs([(top, bottom), (left, right)])
        .with_dilation(pool.dilation)
        .with_ceil_mode(pool.ceil_mode);
    max_pool2d(x, options)
}

/// `act(bn.forward(x))` through the fused kernels ([`norm`]) on Flex: in training (an autodiff
/// device and a layer not frozen) over the batch's statistics, updating the running ones as
/// Burn's module does; otherwise with the running statistics folded into one scale and shift
/// per channel. A frozen layer on an autodiff device, other devices and other dtypes take
/// Burn's module.
pub fn batch_norm_module<const D: usize>(bn: &BatchNorm, act: Act, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let training = bn.training.is_enabled();
    if !runs_on(&device) || x.dtype() != DType::F32 || (device.is_autodiff() && !training) {
        return activate_tensor(bn.forward(x), act);
    }
    if device.is_autodiff() {
        let (y, mean, var) = <Dispatch as ConvKernels>::cae_batch_norm_train(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            bn.epsilon,
            act,
        );
        let (mean, var) = (
            Tensor::<1>::from_dispatch(mean),
            Tensor::<1>::from_dispatch(var),
        );
        let m = bn.momentum;
        let running = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
            let old = state.value_sync().to_device(&device);
            let new = old.mul_scalar(1.0 - m).add(batch.detach().mul_scalar(m));
            state.update(new.detach());
        };
        running(&bn.running_mean, mean);
        running(&bn.running_var, var);
        return Tensor::from_dispatch(y);
    }
    let mean = bn.running_mean.value().to_device(&device);
    let var = bn.running_var.value().to_device(&device);
    let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
    let shift = bn.beta.val().sub(mean.mul(scale.clone()));
    Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
        act,
    ))
}
