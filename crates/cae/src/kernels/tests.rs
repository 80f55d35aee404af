//! Parity of the kernels with Burn's own `conv2d` / `conv_transpose2d` on Flex: forward values
//! and the input, weight and bias gradients through autodiff, to a relative error of 1e-4
//! (max |ours − Burn's| over max |Burn's|), on random and hand-picked shapes.

use super::{Act, ConvKernels};
use burn::backend::Dispatch;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOLERANCE: f32 = 1e-4;

/// One convolution to check; `transpose` picks conv_transpose2d (weight `[cin, cout, kh, kw]`).
#[derive(Debug, Clone)]
struct Case {
    transpose: bool,
    batch: usize,
    cin: usize,
    cout: usize,
    img: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    /// `[(top, bottom), (left, right)]`; symmetric for transposed convolutions.
    padding: [(usize, usize); 2],
    padding_out: [usize; 2],
    bias: bool,
    /// Whether the input needs a gradient (a first layer's does not).
    x_grad: bool,
    act: Act,
}

impl Case {
    fn conv(&self) -> ConvOptions<2> {
        ConvOptions::new_with_padding(self.stride, self.padding, self.dilation, 1)
    }
    fn conv_t(&self) -> ConvTransposeOptions<2> {
        let pad = [self.padding[0].0, self.padding[1].0];
        ConvTransposeOptions::new(self.stride, pad, self.padding_out, self.dilation, 1)
    }
    fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel;
        if self.transpose {
            [self.cin, self.cout, kh, kw]
        } else {
            [self.cout, self.cin, kh, kw]
        }
    }
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// Forward output and the x, weight, bias gradients of `sum(y ⊙ r)`.
type Outcome = (Vec<f32>, Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>);

fn run(case: &Case, ours: bool, seed: u64) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let device = Device::flex().autodiff();
    let [h, w] = case.img;
    let xs = [case.batch, case.cin, h, w];
    let x = tensor(&random(&mut rng, xs.iter().product()), xs, &device);
    let x = if case.x_grad { x.require_grad() } else { x };
    let ws = case.weight_shape();
    let weight = tensor(&random(&mut rng, ws.iter().product()), ws, &device).require_grad();
    let b = random(&mut rng, case.cout);
    let bias = case
        .bias
        .then(|| tensor(&b, [case.cout], &device).require_grad());
    let (xd, wd, bd) = (x.clone(), weight.clone(), bias.clone());
    let activate = |y: Tensor<4>| match case.act {
        Act::Identity => y,
        Act::Relu => burn::tensor::activation::relu(y),
        Act::Sigmoid => burn::tensor::activation::sigmoid(y),
    };
    let y = match (case.transpose, ours) {
        (false, false) => activate(burn::tensor::module::conv2d(xd, wd, bd, case.conv())),
        (true, false) => activate(burn::tensor::module::conv_transpose2d(
            xd,
            wd,
            bd,
            case.conv_t(),
        )),
        (false, true) => Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_conv2d(
            xd.into_dispatch(),
            wd.into_dispatch(),
            super::Bias::from_option(bd.map(Tensor::into_dispatch)),
            case.conv(),
            case.act,
        )),
        (true, true) => Tensor::from_dispatch(<Dispatch as ConvKernels>::cae_conv_transpose2d(
            xd.into_dispatch(),
            wd.into_dispatch(),
            super::Bias::from_option(bd.map(Tensor::into_dispatch)),
            case.conv_t(),
            case.act,
        )),
    };
    let r = tensor(
        &random(&mut rng, y.dims().iter().product()),
        y.dims(),
        &device,
    );
    let grads = (y.clone() * r).sum().backward();
    (
        values(y),
        x.grad(&grads).map(values),
        weight.grad(&grads).map(values).unwrap_or_default(),
        bias.and_then(|b| b.grad(&grads)).map(values),
    )
}

/// max |a − b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|v| v.abs()).fold(0.0, f32::max);
    if scale == 0.0 { diff } else { diff / scale }
}

fn check(case: &Case, seed: u64) {
    let (ours, burn) = (run(case, true, seed), run(case, false, seed));
    let pairs = [
        ("y", Some(ours.0), Some(burn.0)),
        ("dx", ours.1, burn.1),
        ("dw", Some(ours.2), Some(burn.2)),
        ("db", ours.3, burn.3),
    ];
    for (name, a, b) in pairs {
        match (a, b) {
            (Some(a), Some(b)) => {
                let e = rel_err(&a, &b);
                assert!(e <= TOLERANCE, "{name}: relative error {e:e} for {case:?}");
            }
            (None, None) => {}
            (a, b) => panic!(
                "{name}: ours {:?} vs burn {:?} for {case:?}",
                a.is_some(),
                b.is_some()
            ),
        }
    }
}

fn base(transpose: bool) -> Case {
    Case {
        transpose,
        batch: 2,
        cin: 3,
        cout: 4,
        img: [7, 6],
        kernel: [3, 3],
        stride: [1, 1],
        dilation: [1, 1],
        padding: [(1, 1), (1, 1)],
        padding_out: [0, 0],
        bias: true,
        x_grad: true,
        act: Act::Identity,
    }
}

#[test]
fn conv2d_matches_burn_on_hand_picked_shapes() {
    let b = base(false);
    let cases = [
        b.clone(),
        Case {
            bias: false,
            batch: 1,
            ..b.clone()
        },
        // TensorFlow-style `same` with an even kernel: more padding after than before.
        Case {
            kernel: [4, 2],
            padding: [(1, 2), (0, 1)],
            ..b.clone()
        },
        Case {
            stride: [2, 2],
            padding: [(0, 1), (0, 1)],
            img: [8, 8],
            ..b.clone()
        },
        Case {
            dilation: [2, 3],
            padding: [(2, 0), (3, 1)],
            img: [9, 11],
            ..b.clone()
        },
        // The model's shapes, small batch: first layer (no input gradient), 7×7 full padding,
        // 7×7 valid, pointwise, stride 2 odd input.
        Case {
            cin: 1,
            cout: 8,
            img: [28, 28],
            x_grad: false,
            ..b.clone()
        },
        Case {
            cin: 1,
            cout: 5,
            kernel: [7, 7],
            padding: [(6, 6), (6, 6)],
            img: [10, 9],
            ..b.clone()
        },
        Case {
            cin: 6,
            cout: 1,
            kernel: [7, 7],
            padding: [(0, 0), (0, 0)],
            img: [12, 13],
            ..b.clone()
        },
        Case {
            kernel: [1, 1],
            padding: [(0, 0), (0, 0)],
            ..b.clone()
        },
        Case {
            stride: [2, 2],
            img: [7, 7],
            cin: 16,
            cout: 8,
            ..b.clone()
        },
        // Large enough for several column tiles per image.
        Case {
            cin: 40,
            cout: 9,
            img: [30, 31],
            batch: 3,
            ..b.clone()
        },
        // Stride larger than the kernel, kernel as large as the padded input.
        Case {
            stride: [3, 4],
            kernel: [2, 2],
            padding: [(0, 0), (0, 0)],
            ..b.clone()
        },
        Case {
            kernel: [9, 8],
            img: [7, 6],
            ..b.clone()
        },
        // Fused activations, on the gemm and the direct paths.
        Case {
            act: Act::Relu,
            ..b.clone()
        },
        Case {
            act: Act::Sigmoid,
            cout: 1,
            ..b.clone()
        },
        Case {
            act: Act::Relu,
            cout: 2,
            stride: [2, 1],
            ..b
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        check(c, i as u64);
    }
}

#[test]
fn conv_transpose2d_matches_burn_on_hand_picked_shapes() {
    let b = base(true);
    let cases = [
        b.clone(),
        Case {
            bias: false,
            batch: 1,
            ..b.clone()
        },
        // pytorch-small / keras-denoise decoders: stride 2, padding 1, output padding 1.
        Case {
            stride: [2, 2],
            padding_out: [1, 1],
            cin: 8,
            cout: 16,
            img: [7, 7],
            ..b.clone()
        },
        Case {
            stride: [2, 2],
            padding: [(0, 0), (0, 0)],
            img: [7, 7],
            cin: 32,
            cout: 32,
            ..b.clone()
        },
        Case {
            stride: [2, 3],
            padding_out: [1, 2],
            dilation: [1, 2],
            img: [5, 4],
            ..b.clone()
        },
        Case {
            kernel: [1, 1],
            padding: [(0, 0), (0, 0)],
            ..b.clone()
        },
        Case {
            kernel: [4, 5],
            stride: [3, 2],
            padding: [(2, 2), (1, 1)],
            x_grad: false,
            ..b.clone()
        },
        Case {
            cin: 16,
            cout: 1,
            img: [14, 14],
            stride: [2, 2],
            padding_out: [1, 1],
            ..b.clone()
        },
        Case {
            cin: 33,
            cout: 20,
            img: [15, 16],
            batch: 3,
            ..b.clone()
        },
        Case {
            act: Act::Relu,
            stride: [2, 2],
            padding_out: [1, 1],
            ..b.clone()
        },
        Case {
            act: Act::Sigmoid,
            cout: 1,
            stride: [2, 2],
            padding_out: [1, 1],
            ..b
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        check(c, 100 + i as u64);
    }
}

/// Random shapes: kernel, stride, dilation, per-side padding, odd sizes, batch 1–3, with and
/// without bias and input gradient.
fn random_case(rng: &mut ChaCha8Rng, transpose: bool) -> Case {
    loop {
        let kernel = [rng.random_range(1..=5), rng.random_range(1..=5)];
        let stride = [rng.random_range(1..=3), rng.random_range(1..=3)];
        let dilation = [rng.random_range(1..=2), rng.random_range(1..=2)];
        let img = [rng.random_range(1..=12), rng.random_range(1..=12)];
        let mut padding = [(0, 0); 2];
        let mut padding_out = [0; 2];
        for i in 0..2 {
            let before = rng.random_range(0..=kernel[i]);
            padding[i] = if transpose {
                (before, before)
            } else {
                (before, rng.random_range(0..=kernel[i]))
            };
            padding_out[i] = if transpose {
                rng.random_range(0..stride[i].max(dilation[i]))
            } else {
                0
            };
        }
        let case = Case {
            transpose,
            batch: rng.random_range(1..=3),
            cin: rng.random_range(1..=6),
            cout: rng.random_range(1..=6),
            img,
            kernel,
            stride,
            dilation,
            padding,
            padding_out,
            bias: rng.random_bool(0.5),
            x_grad: rng.random_bool(0.8),
            act: [Act::Identity, Act::Relu, Act::Sigmoid][rng.random_range(0..3)],
        };
        let fits = (0..2).all(|i| {
            let span = dilation[i] * (kernel[i] - 1) + 1;
            if transpose {
                (img[i] - 1) * stride[i] + span + padding_out[i] > 2 * padding[i].0
            } else {
                img[i] + padding[i].0 + padding[i].1 >= span
            }
        });
        if fits {
            return case;
        }
    }
}

#[test]
fn conv2d_matches_burn_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for i in 0..60 {
        check(&random_case(&mut rng, false), 1000 + i);
    }
}

#[test]
fn conv_transpose2d_matches_burn_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for i in 0..60 {
        check(&random_case(&mut rng, true), 2000 + i);
    }
}

#[test]
fn inference_without_autodiff_matches_burn() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let device = Device::flex();
    for transpose in [false, true] {
        let c = Case {
            stride: [2, 2],
            padding_out: [1, 1],
            ..base(transpose)
        };
        let [h, w] = c.img;
        let x = tensor(
            &random(&mut rng, c.batch * c.cin * h * w),
            [c.batch, c.cin, h, w],
            &device,
        );
        let ws = c.weight_shape();
        let weight = tensor(&random(&mut rng, ws.iter().product()), ws, &device);
        let bias = Some(tensor(&random(&mut rng, c.cout), [c.cout], &device));
        let (ours, burn) = if transpose {
            (
                super::conv_transpose2d(x.clone(), weight.clone(), bias.clone(), c.conv_t(), c.act),
                burn::tensor::module::conv_transpose2d(x, weight, bias, c.conv_t()),
            )
        } else {
            (
                super::conv2d(x.clone(), weight.clone(), bias.clone(), c.conv(), c.act),
                burn::tensor::module::conv2d(x, weight, bias, c.conv()),
            )
        };
        assert!(rel_err(&values(ours), &values(burn)) <= TOLERANCE);
    }
}

#[test]
fn grouped_convolutions_fall_back_to_burn() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let device = Device::flex();
    let x = tensor(&random(&mut rng, 2 * 4 * 5 * 5), [2, 4, 5, 5], &device);
    let weight = tensor(&random(&mut rng, 6 * 2 * 9), [6, 2, 3, 3], &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    let ours = super::conv2d(
        x.clone(),
        weight.clone(),
        None,
        options.clone(),
        Act::Identity,
    );
    let burn = burn::tensor::module::conv2d(x, weight, None, options);
    assert!(rel_err(&values(ours), &values(burn)) <= TOLERANCE);
}

#[test]
fn values_mut_changes_only_its_own_tensor_when_the_storage_is_shared() {
    use super::flex::{tensor, values, values_mut};
    let a = tensor(vec![1.0, 2.0, 3.0], &[3]);
    let mut b = a.clone();
    values_mut(&mut b).iter_mut().for_each(|v| *v *= 10.0);
    assert_eq!(values(&a), &[1.0, 2.0, 3.0]);
    assert_eq!(values(&b), &[10.0, 20.0, 30.0]);
    // Alone now: changed where it lies.
    let before = values(&b).as_ptr();
    values_mut(&mut b)[0] = -1.0;
    assert_eq!((values(&b)[0], values(&b).as_ptr()), (-1.0, before));
}

/// A batch norm layer of `c` channels with random gamma and beta, on `device`.
fn batch_norm_layer(rng: &mut ChaCha8Rng, c: usize, device: &Device) -> burn::nn::BatchNorm {
    use burn::module::Param;
    let mut bn = burn::nn::BatchNormConfig::new(c).init(device);
    bn.gamma = Param::from_tensor(tensor(&random(rng, c), [c], device));
    bn.beta = Param::from_tensor(tensor(&random(rng, c), [c], device));
    bn
}

/// Output, input/gamma/beta gradients of `sum(act(bn(x)) ⊙ r)` and the running statistics
/// after the step, through the fused kernels or Burn's module and activation.
fn batch_norm_run<const D: usize>(dims: [usize; D], act: Act, ours: bool) -> [Vec<f32>; 6] {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let device = Device::flex().autodiff();
    let bn = batch_norm_layer(&mut rng, dims[1], &device);
    let n = dims.iter().product();
    // A mean and spread far from 0 and 1, as real activations have.
    let xs: Vec<f32> = random(&mut rng, n).iter().map(|v| 3.0 + 2.5 * v).collect();
    let x = tensor(&xs, dims, &device).require_grad();
    let r = tensor(&random(&mut rng, n), dims, &device);
    let y = if ours {
        super::batch_norm_module(&bn, act, x.clone())
    } else {
        super::activate_tensor(bn.forward(x.clone()), act)
    };
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<1>| values(t.grad(&grads).expect("a gradient"));
    [
        values(y),
        values(x.grad(&grads).expect("dx")),
        grad(&bn.gamma.val()),
        grad(&bn.beta.val()),
        values(bn.running_mean.value()),
        values(bn.running_var.value()),
    ]
}

#[test]
fn batch_norm_matches_burn_in_training() {
    let names = ["y", "dx", "dgamma", "dbeta", "running mean", "running var"];
    for act in [Act::Identity, Act::Relu, Act::Sigmoid] {
        let (ours, burn) = (
            batch_norm_run([3, 4, 5, 7], act, true),
            batch_norm_run([3, 4, 5, 7], act, false),
        );
        for (name, (a, b)) in names.iter().zip(ours.iter().zip(&burn)) {
            let e = rel_err(a, b);
            assert!(e <= TOLERANCE, "{name} ({act:?}): relative error {e:e}");
        }
        // A dense layer's batch norm: `[n, features]`.
        let (ours, burn) = (
            batch_norm_run([6, 5], act, true),
            batch_norm_run([6, 5], act, false),
        );
        for (name, (a, b)) in names.iter().zip(ours.iter().zip(&burn)) {
            let e = rel_err(a, b);
            assert!(
                e <= TOLERANCE,
                "{name} ({act:?}, rank 2): relative error {e:e}"
            );
        }
    }
}

#[test]
fn batch_norm_matches_burn_in_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let device = Device::flex();
    let bn = batch_norm_layer(&mut rng, 3, &device);
    bn.running_mean
        .update(tensor(&random(&mut rng, 3), [3], &device));
    bn.running_var
        .update(tensor(&[0.5, 2.0, 0.01], [3], &device));
    let dims = [2, 3, 4, 6];
    let x = tensor(&random(&mut rng, 144), dims, &device);
    for act in [Act::Identity, Act::Relu, Act::Sigmoid] {
        let ours = values(super::batch_norm_module(&bn, act, x.clone()));
        let burn = values(super::activate_tensor(bn.forward(x.clone()), act));
        let e = rel_err(&ours, &burn);
        assert!(e <= TOLERANCE, "{act:?}: relative error {e:e}");
    }
}
