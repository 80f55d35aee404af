//! The wgpu path run for real: the forward pass and the gradients of one training step of every
//! preset, and of a spec with each layer kind and option the presets leave out, on the first
//! wgpu adapter (Mesa's software Vulkan driver, lavapipe, where there is no GPU) give what the
//! same weights give on flex. Our fast kernels are flex-only, so this is Burn's own ops on wgpu
//! (and our matrix form of bilinear upsampling, whose backward Burn's GPU backends lack) against
//! ours.
//!
//! Built only with `--features wgpu` (`.ci/wgpu` runs it with the CLI's wgpu tests; needs a
//! Vulkan driver: on Debian, `apt install mesa-vulkan-drivers libvulkan1`).
#![cfg(feature = "wgpu")]

use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Tensor, TensorData};
use cae::data::{ImageSet, ImageShape};
use cae::device::DeviceKind;
use cae::infer::for_each_reconstruction;
use cae::interop::{Values, export_state_dict};
use cae::model::{Autoencoder, weights_from_bytes, weights_to_bytes};
use cae::spec::{ArchSpec, LayerPlan, PRESETS, ValidSpec};

/// `n` smooth, distinct images of `shape` in [0, 1].
fn images(shape: ImageShape, n: usize) -> ImageSet {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let mut pixels = Vec::with_capacity(n * shape.len());
    for k in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = ((x as f32 * 0.37 + y as f32 * 0.21 + ch as f32 + k as f32 * 1.3)
                        .sin()
                        + 1.0)
                        / 2.0;
                    pixels.push(v);
                }
            }
        }
    }
    ImageSet::unlabelled(shape, pixels)
}

fn outputs(model: &Autoencoder, set: &ImageSet, device: &cae::Device) -> Vec<f32> {
    let mut out = Vec::new();
    for_each_reconstruction(model, set, set.len(), device, |_, _, y| {
        out.extend_from_slice(y)
    })
    .expect("a forward pass");
    out
}

/// Layer kinds and options no preset uses: strided, dilated and unbiased convolutions, average
/// pooling, dropout (a no-op at inference), bilinear upsampling, a dense code reshaped into a
/// volume, transposed convolutions with output padding, and the activations beside relu.
const OTHER_LAYERS: &str = r#"
input = "3x20x20"
[[encoder]]
type = "conv"
filters = 6
kernel = 3
stride = 2
padding = "same"
activation = "leaky_relu"
[[encoder]]
type = "conv"
filters = 6
kernel = 3
dilation = 2
padding = "same"
bias = false
activation = "elu"
[[encoder]]
type = "avg_pool"
size = 2
[[encoder]]
type = "dropout"
rate = 0.3
[[encoder]]
type = "dense"
units = 12
activation = "tanh"
[[decoder]]
type = "dense"
shape = "4x5x5"
activation = "gelu"
[[decoder]]
type = "upsample"
factor = 2
mode = "bilinear"
[[decoder]]
type = "conv_transpose"
filters = 4
kernel = 3
stride = 2
padding = 1
output_padding = 1
activation = "sigmoid"
[[decoder]]
type = "batch_norm"
[[decoder]]
type = "conv"
filters = 3
kernel = 3
padding = "same"
"#;

/// Every preset, then the spec of [`OTHER_LAYERS`] (its dropout at `dropout_rate`).
fn every_spec(dropout_rate: &str) -> Vec<(&'static str, ValidSpec)> {
    let other = OTHER_LAYERS.replace("rate = 0.3", &format!("rate = {dropout_rate}"));
    let other =
        ArchSpec::resolve_text("other-layers", &other, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let presets = PRESETS.iter().map(|preset| {
        let spec = ArchSpec::resolve(preset.name, &[], None).expect("a preset resolves");
        (preset.name, spec)
    });
    presets.chain([("other-layers", other)]).collect()
}

#[test]
fn every_preset_gives_flex_outputs_on_wgpu() {
    let gpu = DeviceKind::Wgpu.device().unwrap_or_else(|e| panic!("{e}"));
    let cpu = DeviceKind::Flex.device().expect("flex");
    for (name, spec) in every_spec("0.3") {
        let on_flex = Autoencoder::new(&spec, &cpu);
        let bytes = weights_to_bytes(&on_flex).expect("weights serialise");
        let mut on_wgpu = Autoencoder::new(&spec, &gpu);
        weights_from_bytes(&mut on_wgpu, bytes, name).expect("weights load on wgpu");
        let set = images(spec.input, 2);
        let a = outputs(&on_flex, &set, &cpu);
        let b = outputs(&on_wgpu, &set, &gpu);
        assert_eq!(a.len(), b.len(), "{name}");
        let scale = a.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale.max(1.0),
            "{name}: wgpu differs from flex by {worst} (outputs up to {scale})"
        );
        eprintln!("{name}: max |flex - wgpu| = {worst:.2e}");
    }
}

/// `n` pixels of white noise in [0, 1] (a fixed hash): unlike smooth images, they keep batch
/// norm's gradients from cancelling down to rounding noise.
fn noise(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 12.9898).sin() * 43758.547).rem_euclid(1.0))
        .collect()
}

/// Each tensor of `model` by name, as f32 values.
fn parameters(model: &Autoencoder, spec: &ValidSpec) -> Vec<(String, Vec<f32>)> {
    let dict = export_state_dict(model, spec).unwrap_or_else(|e| panic!("{e}"));
    dict.tensors
        .into_iter()
        .filter_map(|(name, t)| match t.values {
            Values::F32(v) => Some((name, v)),
            Values::I64(_) => None,
        })
        .collect()
}

/// The change one plain SGD step (learning rate 1) makes to every parameter of `spec` from the
/// weights in `start`, on `device`: minus the gradient of a squared-error loss of two images.
fn sgd_step(spec: &ValidSpec, start: &[u8], device: &cae::Device) -> Vec<(String, Vec<f32>)> {
    let device = device.clone().autodiff();
    let mut model = Autoencoder::new(spec, &device);
    weights_from_bytes(&mut model, start.to_vec(), "start").expect("weights load");
    let before = parameters(&model, spec);
    let s = spec.input;
    let x = Tensor::<4>::from_data(
        TensorData::new(noise(2 * s.len()), [2, s.channels, s.height, s.width]),
        &device,
    );
    let loss = (model.forward(x) - 0.4).powi_scalar(2).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut sgd = SgdConfig::new().init();
    let model = sgd.step(1.0, model, grads);
    parameters(&model, spec)
        .into_iter()
        .zip(before)
        .map(|((name, after), (_, before))| {
            let change = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            (name, change)
        })
        .collect()
}

/// The agreement asked of two devices' gradients: `(per tensor, whole)`, the largest difference
/// relative to the tensor's largest gradient, and the relative L2 distance of all tensors
/// together. Batch norm in training mode subtracts each channel's mean gradient, and the
/// gradients of the layers before it are then sums of terms that nearly cancel: there any two
/// implementations differ by about 1e-3 of the whole gradient and by a few % on single tensors
/// (measured: Burn's ops on flex, `CAE_KERNELS=burn`, against wgpu 1.4–3.0e-3 whole; our kernels
/// against wgpu 0.7–9e-3 whole and up to 4.3 % on one tensor). Specs with batch norm get
/// (10 %, 2e-2); every other spec agrees to about 1e-7 and is held to (1e-3, 1e-5).
fn gradient_tolerance(spec: &ValidSpec) -> (f32, f64) {
    let batch_norm = spec
        .encoder
        .iter()
        .chain(&spec.decoder)
        .any(|l| matches!(l.plan, LayerPlan::BatchNorm { .. }));
    if batch_norm {
        (0.1, 2e-2)
    } else {
        (1e-3, 1e-5)
    }
}

/// Training on wgpu follows flex step by step: the same weights get the same gradients (within
/// float rounding), for every preset and every other layer kind. Dropout is set to 0, as the
/// two devices draw different masks.
#[test]
fn every_preset_gets_flex_gradients_on_wgpu() {
    let gpu = DeviceKind::Wgpu.device().unwrap_or_else(|e| panic!("{e}"));
    let cpu = DeviceKind::Flex.device().expect("flex");
    let mut apart = Vec::new();
    for (name, spec) in every_spec("0.0") {
        let (tolerance, whole_tolerance) = gradient_tolerance(&spec);
        let start = weights_to_bytes(&Autoencoder::new(&spec, &cpu)).expect("weights serialise");
        let on_flex = sgd_step(&spec, &start, &cpu);
        let on_wgpu = sgd_step(&spec, &start, &gpu);
        assert_eq!(on_flex.len(), on_wgpu.len(), "{name}");
        let (mut distance, mut norm) = (0f64, 0f64);
        for ((tensor, a), (_, b)) in on_flex.iter().zip(&on_wgpu) {
            for (x, y) in a.iter().zip(b) {
                distance += ((x - y) as f64).powi(2);
                norm += (*x as f64).powi(2);
            }
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            eprintln!("{name} {tensor}: max |flex - wgpu| = {worst:.2e} of {scale:.2e}");
            // A gradient that is zero in theory (a conv bias before batch norm) is rounding
            // noise on both devices: the absolute floor covers it.
            if worst > tolerance * scale + 1e-6 {
                apart.push(format!("{name} {tensor}: {worst:.2e} of {scale:.2e}"));
            }
        }
        let whole = (distance / norm.max(1e-30)).sqrt();
        eprintln!("{name}: whole gradient {whole:.2e} apart");
        if whole > whole_tolerance {
            apart.push(format!("{name}, whole gradient: {whole:.2e} apart"));
        }
    }
    assert!(
        apart.is_empty(),
        "wgpu gradients apart from flex's: {apart:#?}"
    );
}
