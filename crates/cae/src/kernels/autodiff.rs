//! [`ConvKernels`] for `Autodiff<Flex>`: runs the Flex forward kernels (activation fused) and
//! records one backward step per convolution. From the saved input, weight and (for a fused
//! activation) output, it computes exactly the gradients the graph needs — input, weight,
//! bias — without materialising the pre-activation tensor.

use super::act::Act;
use super::conv::{self, ConvShape, Wanted};
use super::conv_transpose::{self, ConvTShape};
use super::flex::{self, conv_shape, conv_transpose_shape, dense, values};
use super::norm::{self, NormShape};
use super::phases::{self, Phases};
use super::pool::{self, PoolShape};
use super::{
    Bias, ConvKernels, activate, batch_norm_train_with, channel_affine_with, interleaved_dims,
    phases_of,
};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Init, Ops, OpsKind, OpsPrep};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Flex};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use std::sync::Arc;

/// Which convolution a backward step belongs to, with its shapes.
#[derive(Debug, Clone, Copy)]
enum Op {
    Conv(ConvShape),
    ConvTranspose(ConvTShape),
}

/// The backward step: parents are `[x, weight]` or `[x, weight, bias]`.
#[derive(Debug)]
struct ConvBackward;

/// An `Autodiff<Flex>` float tensor.
type Ad<C> = FloatTensor<Autodiff<Flex, C>>;

/// Saved for the backward pass.
#[derive(Debug, Clone)]
struct State {
    x: FlexTensor,
    weight: FlexTensor,
    op: Op,
    act: Act,
    /// The output, when the activation's gradient needs it.
    y: Option<FlexTensor>,
}

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    type State = State;

    fn backward(self, ops: Ops<State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut dy = dense(grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let parent = |i: usize| ops.parents.get(i).and_then(Option::as_ref);
        let want = Wanted {
            x: parent(0).is_some(),
            weight: parent(1).is_some(),
            bias: parent(2).is_some(),
        };
        if let Some(y) = &s.y {
            s.act.grad_in_place(values(y), flex::values_mut(&mut dy));
        }
        let dys = values(&dy);
        let (xs, ws) = (values(&s.x), values(&s.weight));
        let g = match s.op {
            Op::Conv(shape) => conv::backward(xs, ws, dys, &shape, want),
            Op::ConvTranspose(shape) => conv_transpose::backward(xs, ws, dys, &shape, want),
        };
        let (gx, gw, gb) = flex::grad_tensors(g, s.x.layout().shape(), s.weight.layout().shape());
        for (i, g) in [gx, gw, gb].into_iter().enumerate() {
            if let (Some(node), Some(g)) = (parent(i), g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

/// Registers the step for an `N`-input op whose forward result is `y`.
fn finish<C: CheckpointStrategy, const N: usize>(
    prep: OpsPrep<ConvBackward, Flex, State, C, N, Init>,
    mut state: State,
    y: FlexTensor,
) -> Ad<C> {
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            state.y = state.act.needs_output().then(|| y.clone());
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// Runs `forward` on the dense primitives and records its backward step.
fn record<C: CheckpointStrategy>(
    (x, weight, bias): (Ad<C>, Ad<C>, Option<Ad<C>>),
    op: Op,
    act: Act,
    forward: impl FnOnce(&FlexTensor, &FlexTensor, Option<FlexTensor>) -> FlexTensor,
) -> Ad<C> {
    let (x, xn) = x.into_parts();
    let (w, wn) = weight.into_parts();
    let (x, w) = (dense(x), dense(w));
    let state = |x: &FlexTensor, w: &FlexTensor| State {
        x: x.clone(),
        weight: w.clone(),
        op,
        act,
        y: None,
    };
    match bias.map(|b| b.into_parts()) {
        Some((b, bn)) => {
            let prep = ConvBackward.prepare::<C>([xn, wn, bn]);
            let y = forward(&x, &w, Some(b));
            finish(prep, state(&x, &w), y)
        }
        None => {
            let prep = ConvBackward.prepare::<C>([xn, wn]);
            let y = forward(&x, &w, None);
            finish(prep, state(&x, &w), y)
        }
    }
}

/// Max pooling's backward step: routes each output gradient to its window's argmax.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// Each output's argmax offset in its plane, the shapes, and the input dims.
    type State = (Arc<Vec<u32>>, PoolShape, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = dense(grads.consume::<Flex>(&ops.node));
        let (argmax, s, dims) = ops.state;
        if let [Some(node)] = &ops.parents {
            let dx = pool::backward(values(&dy), &argmax, &s);
            grads.register::<Flex>(node.id, flex::tensor(dx, &dims));
        }
    }
}

/// The phase interleave's backward step: each output gradient back to its phase position.
#[derive(Debug)]
struct PhasesBackward;

impl Backward<Flex, 1> for PhasesBackward {
    type State = Phases;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = dense(grads.consume::<Flex>(&ops.node));
        let p = ops.state;
        if let [Some(node)] = &ops.parents {
            let dz = phases::deinterleave(values(&dy), &p);
            let dims = [p.batch, 4 * p.cout, p.half[0] + 1, p.half[1] + 1];
            grads.register::<Flex>(node.id, flex::tensor(dz, &dims));
        }
    }
}

/// Batch normalisation's backward step: parents `[x, gamma, beta]`.
#[derive(Debug)]
struct NormBackward;

/// Saved for the backward pass of a batch normalisation.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    /// The output, when the activation's gradient needs it.
    y: Option<FlexTensor>,
    mean: FlexTensor,
    inv_std: Arc<Vec<f32>>,
    shape: NormShape,
    act: Act,
}

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut dy = dense(grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let saved = norm::Saved {
            x: values(&s.x),
            y: s.y.as_ref().map(values),
            mean: values(&s.mean),
            inv_std: &s.inv_std,
            gamma: values(&s.gamma),
            act: s.act,
        };
        let (dgamma, dbeta) = norm::backward(&saved, flex::values_mut(&mut dy), &s.shape);
        let channels = [s.shape.channels];
        let [x, gamma, beta] = &ops.parents;
        for (parent, g) in [
            (x, dy),
            (gamma, flex::tensor(dgamma, &channels)),
            (beta, flex::tensor(dbeta, &channels)),
        ] {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvKernels for Autodiff<Flex, C> {
    fn cae_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let Some(shape) = flex::norm_shape(x.primitive(), gamma.primitive(), beta.primitive())
        else {
            return batch_norm_train_with::<Self>(x, gamma, beta, epsilon, act);
        };
        let (x, xn) = x.into_parts();
        let (gamma, gn) = gamma.into_parts();
        let (beta, bn) = beta.into_parts();
        let (x, gamma, beta) = (dense(x), dense(gamma), dense(beta));
        let f = flex::batch_norm_forward(&x, &gamma, &beta, epsilon, &shape, act);
        let y = match NormBackward
            .prepare::<C>([xn, gn, bn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = NormState {
                    x,
                    gamma,
                    y: act.needs_output().then(|| f.y.clone()),
                    mean: f.mean.clone(),
                    inv_std: Arc::new(f.inv_std),
                    shape,
                    act,
                };
                prep.finish(state, f.y)
            }
            OpsKind::UnTracked(prep) => prep.finish(f.y),
        };
        (y, Self::from_inner(f.mean), Self::from_inner(f.var))
    }

    fn cae_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        // Inference only reaches the kernels off autodiff devices; differentiable Burn ops here.
        channel_affine_with::<Self>(x, scale, shift, act)
    }

    fn cae_interleave_phases(z: FloatTensor<Self>, half: [usize; 2]) -> FloatTensor<Self> {
        let (z, node) = z.into_parts();
        let z = dense(z);
        let p = phases_of(&z, half);
        let y = flex::tensor(phases::interleave(values(&z), &p), &interleaved_dims(&p));
        match PhasesBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(p, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn cae_max_pool2d(x: FloatTensor<Self>, o: MaxPoolOptions<2>) -> FloatTensor<Self> {
        let dims = flex::dims4(x.primitive());
        let Some((dims, s)) = dims.and_then(|d| Some((d, PoolShape::new(d, &o)?))) else {
            // Unreachable through `max_pool2d`, which sends these shapes to Burn's own op.
            let pad = o.padding.map(|(begin, _)| begin);
            return <Self as ModuleOps<Self>>::max_pool2d(
                x,
                o.kernel_size,
                o.stride,
                pad,
                o.dilation,
                o.ceil_mode,
            );
        };
        let (x, node) = x.into_parts();
        let x = dense(x);
        match PoolBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, argmax) = pool::forward(values(&x), &s, true);
                let y = flex::tensor(y, &[dims[0], dims[1], s.out[0], s.out[1]]);
                prep.finish((Arc::new(argmax), s, dims), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex::max_pool_forward(&x, dims, &s)),
        }
    }

    fn cae_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Bias<Self>,
        options: ConvOptions<2>,
        act: Act,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        let b = bias.as_ref().map(|b| b.primitive());
        match conv_shape(x.primitive(), weight.primitive(), b, &options) {
            Some(s) => record::<C>((x, weight, bias), Op::Conv(s), act, |x, w, b| {
                flex::conv_forward(x, w, b, &s, act)
            }),
            None => {
                let y = <Self as ModuleOps<Self>>::conv2d(x, weight, bias, options);
                activate::<Self>(y, act)
            }
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
        let b = bias.as_ref().map(|b| b.primitive());
        match conv_transpose_shape(x.primitive(), weight.primitive(), b, &options) {
            Some(s) => record::<C>((x, weight, bias), Op::ConvTranspose(s), act, |x, w, b| {
                flex::conv_transpose_forward(x, w, b, &s, act)
            }),
            None => {
                let y = <Self as ModuleOps<Self>>::conv_transpose2d(x, weight, bias, options);
                activate::<Self>(y, act)
            }
        }
    }
}
