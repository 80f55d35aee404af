//! The Flex side of the kernels: reading `FlexTensor`s as f32 slices, checking that a call is one
//! the kernels handle (f32, groups = 1, consistent shapes) and building the output tensors.
//! Anything else is left to Burn's own Flex ops by the callers.

use super::act::Act;
use super::conv::{ConvShape, Grads};
use super::conv_transpose::ConvTShape;
use super::im2col::Geom;
use super::norm::{self, NormShape};
use super::pool::PoolShape;
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, TensorData};

/// The four dimensions of an f32 tensor of rank 4.
pub(crate) fn dims4(t: &FlexTensor) -> Option<[usize; 4]> {
    match (t.dtype(), &**t.layout().shape()) {
        (DType::F32, &[a, b, c, d]) => Some([a, b, c, d]),
        _ => None,
    }
}

/// Whether `bias` is absent or an f32 vector of `len` values.
fn bias_fits(bias: Option<&FlexTensor>, len: usize) -> bool {
    bias.is_none_or(|b| b.dtype() == DType::F32 && **b.layout().shape() == [len])
}

/// The shapes of `conv2d(x, weight, bias, options)` when the kernels handle it.
pub(crate) fn conv_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    o: &ConvOptions<2>,
) -> Option<ConvShape> {
    let [batch, cin, h, w] = dims4(x)?;
    let [cout, wcin, kh, kw] = dims4(weight)?;
    if o.groups != 1 || wcin != cin || !bias_fits(bias, cout) {
        return None;
    }
    let out = |i: usize, img: usize, k: usize| {
        let (before, after) = o.padding[i];
        let span = o.dilation[i] * (k - 1) + 1;
        let padded = img + before + after;
        (k > 0 && o.stride[i] > 0 && padded >= span).then(|| (padded - span) / o.stride[i] + 1)
    };
    let geom = Geom {
        channels: cin,
        img: [h, w],
        kernel: [kh, kw],
        stride: o.stride,
        dilation: o.dilation,
        pad: [o.padding[0].0 as isize, o.padding[1].0 as isize],
        grid: [out(0, h, kh)?, out(1, w, kw)?],
    };
    Some(ConvShape { batch, cout, geom })
}

/// The shapes of `conv_transpose2d(x, weight, bias, options)` when the kernels handle it.
pub(crate) fn conv_transpose_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    o: &ConvTransposeOptions<2>,
) -> Option<ConvTShape> {
    let [batch, cin, h, w] = dims4(x)?;
    let [wcin, cout, kh, kw] = dims4(weight)?;
    if o.groups != 1 || wcin != cin || !bias_fits(bias, cout) {
        return None;
    }
    // (in − 1)·s + d·(k − 1) + out_pad + 1 − 2·pad
    let out = |i: usize, n: usize, k: usize| {
        let full = (n.checked_sub(1)?) * o.stride[i]
            + o.dilation[i] * k.checked_sub(1)?
            + o.padding_out[i]
            + 1;
        full.checked_sub(2 * o.padding[i]).filter(|&v| v > 0)
    };
    let geom = Geom {
        channels: cout,
        img: [out(0, h, kh)?, out(1, w, kw)?],
        kernel: [kh, kw],
        stride: o.stride,
        dilation: o.dilation,
        pad: o.padding.map(|p| p as isize),
        grid: [h, w],
    };
    (o.stride.iter().all(|&s| s > 0)).then_some(ConvTShape { batch, cin, geom })
}

/// `t` with its values dense in memory (a copy only when it is a strided view).
pub(crate) fn dense(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a dense f32 tensor (see [`dense`]); empty if it is not one.
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    let (start, n) = (t.layout().start_offset(), t.layout().num_elements());
    if t.dtype() != DType::F32 || !t.is_contiguous() {
        return &[];
    }
    t.storage::<f32>().get(start..start + n).unwrap_or(&[])
}

/// The values of `t` for changing in place: `t` is first replaced by a dense copy of its own
/// unless it is already a dense f32 tensor that alone owns exactly its storage (a gradient
/// handed to a backward step usually is, so this costs nothing there).
pub(crate) fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    let n = t.layout().num_elements();
    let owned = t.dtype() == DType::F32
        && t.is_contiguous()
        && t.layout().start_offset() == 0
        && t.is_unique()
        && t.storage::<f32>().len() == n;
    if !owned {
        *t = tensor(values(t).to_vec(), t.layout().shape());
    }
    match t.try_storage_mut::<f32>() {
        Some(v) => {
            let n = n.min(v.len());
            &mut v[..n]
        }
        None => &mut [],
    }
}

/// A tensor of `shape` owning `values`.
pub(crate) fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The gradients as tensors shaped like `x`, `weight` and `bias`.
pub(crate) fn grad_tensors(
    g: Grads,
    x: &[usize],
    weight: &[usize],
) -> (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>) {
    let bias_len = g.bias.as_ref().map_or(0, Vec::len);
    (
        g.x.map(|v| tensor(v, x)),
        g.weight.map(|v| tensor(v, weight)),
        g.bias.map(|v| tensor(v, &[bias_len])),
    )
}

/// Runs `conv2d` on dense `x` and `weight` of shapes `s` (see [`conv_shape`]).
pub(crate) fn conv_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<FlexTensor>,
    s: &ConvShape,
    act: Act,
) -> FlexTensor {
    let bias = bias.map(dense);
    let y = super::conv::forward(values(x), values(weight), bias.as_ref().map(values), s, act);
    let [oh, ow] = s.geom.grid;
    tensor(y, &[s.batch, s.cout, oh, ow])
}

/// Runs `conv_transpose2d` on dense `x` and `weight` of shapes `s` (see
/// [`conv_transpose_shape`]).
pub(crate) fn conv_transpose_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<FlexTensor>,
    s: &ConvTShape,
    act: Act,
) -> FlexTensor {
    let bias = bias.map(dense);
    let b = bias.as_ref().map(values);
    let y = super::conv_transpose::forward(values(x), values(weight), b, s, act);
    let [oh, ow] = s.geom.img;
    tensor(y, &[s.batch, s.geom.channels, oh, ow])
}

/// Runs max pooling (no argmax) on a dense f32 `x` of `dims`.
pub(crate) fn max_pool_forward(x: &FlexTensor, dims: [usize; 4], s: &PoolShape) -> FlexTensor {
    let (y, _) = super::pool::forward(values(x), s, false);
    tensor(y, &[dims[0], dims[1], s.out[0], s.out[1]])
}

/// The layout of `x` for batch normalisation with per-channel `a` and `b` (gamma and beta, or
/// scale and shift) when the kernels handle it: all f32, x of rank ≥ 2, `a` and `b` `[c]`.
pub(crate) fn norm_shape(x: &FlexTensor, a: &FlexTensor, b: &FlexTensor) -> Option<NormShape> {
    let all_f32 = [x, a, b].iter().all(|t| t.dtype() == DType::F32);
    let s = NormShape::of(x.layout().shape())?;
    let per_channel = |t: &FlexTensor| **t.layout().shape() == [s.channels];
    (all_f32 && per_channel(a) && per_channel(b)).then_some(s)
}

/// A training-mode batch normalisation's results.
pub(crate) struct NormForward {
    /// `act(batch_norm(x))`.
    pub y: FlexTensor,
    /// The batch mean and biased variance, `[c]`.
    pub mean: FlexTensor,
    pub var: FlexTensor,
    /// `1 / sqrt(var + epsilon)`, for the backward pass.
    pub inv_std: Vec<f32>,
}

/// Normalises dense `x` over its batch's statistics (see [`norm_shape`]).
pub(crate) fn batch_norm_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
    s: &NormShape,
    act: Act,
) -> NormForward {
    let xs = values(x);
    let (mean, var) = norm::batch_stats(xs, s);
    let inv_std = norm::inv_std(&var, epsilon);
    let (scale, shift) = norm::scale_shift(&mean, &inv_std, values(gamma), values(beta));
    let y = norm::affine(xs, s, &scale, &shift, act);
    NormForward {
        y: tensor(y, x.layout().shape()),
        mean: tensor(mean, &[s.channels]),
        var: tensor(var, &[s.channels]),
        inv_std,
    }
}
