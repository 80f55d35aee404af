//! The wgpu path run for real: the forward pass of every preset, and of a spec with each layer
//! kind and option the presets leave out, on the first wgpu adapter (Mesa's software Vulkan
//! driver, lavapipe, where there is no GPU) gives what the same weights give on flex. Our fast
//! kernels are flex-only, so this is Burn's own ops on wgpu against ours.
//!
//! Built only with `--features wgpu` (`.ci/wgpu` runs it with the CLI's wgpu tests; needs a
//! Vulkan driver: on Debian, `apt install mesa-vulkan-drivers libvulkan1`).
#![cfg(feature = "wgpu")]

use cae::data::{ImageSet, ImageShape};
use cae::device::DeviceKind;
use cae::infer::for_each_reconstruction;
use cae::model::{Autoencoder, weights_from_bytes, weights_to_bytes};
use cae::spec::{ArchSpec, PRESETS};

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

#[test]
fn every_preset_gives_flex_outputs_on_wgpu() {
    let gpu = DeviceKind::Wgpu.device().unwrap_or_else(|e| panic!("{e}"));
    let cpu = DeviceKind::Flex.device().expect("flex");
    let other = ArchSpec::resolve_text("other-layers", OTHER_LAYERS, &[], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let presets = PRESETS.iter().map(|preset| {
        let spec = ArchSpec::resolve(preset.name, &[], None).expect("a preset resolves");
        (preset.name, spec)
    });
    for (name, spec) in presets.chain([("other-layers", other)]) {
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
