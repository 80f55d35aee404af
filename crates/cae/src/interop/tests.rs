//! Interop: the naming pinned against the PyTorch twins in `bench/torch_reference.py`, export →
//! import round trips for every preset, layouts checked by hand, one test per import error, and
//! parity with PyTorch outputs through committed fixtures (no torch needed).

use super::*;
use crate::data::ImageShape;
use crate::model::{Autoencoder, Flow};
use crate::spec::{ArchSpec, PRESETS, ValidSpec};
use burn::tensor::{Device, Tensor, TensorData};
use std::path::PathBuf;

fn spec(name: &str, input: &str) -> ValidSpec {
    ArchSpec::resolve(name, &[], Some(ImageShape::parse(input).unwrap())).unwrap()
}

fn spec_text(toml: &str, input: &str) -> ValidSpec {
    ArchSpec::resolve_text(
        "test.toml",
        toml,
        &[],
        Some(ImageShape::parse(input).unwrap()),
    )
    .unwrap()
}

fn sources(s: &ValidSpec) -> Vec<String> {
    torch_sequential(s)
        .unwrap()
        .modules
        .into_iter()
        .map(|m| m.source)
        .collect()
}

fn output(model: &Autoencoder, x: &Tensor<4>) -> Vec<f32> {
    model
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn input(s: &ValidSpec, n: usize, device: &Device) -> Tensor<4> {
    let i = s.input;
    let len = n * i.len();
    let values: Vec<f32> = (0..len).map(|k| ((k * 37 % 101) as f32) / 100.0).collect();
    Tensor::from_data(
        TensorData::new(values, [n, i.channels, i.height, i.width]),
        device,
    )
}

fn import_err(s: &ValidSpec, state: &StateDict) -> String {
    import_state_dict(s, state, "m.safetensors", &Device::flex())
        .unwrap_err()
        .to_string()
}

#[test]
fn pytorch_small_is_the_tutorial_sequential() {
    let s = spec("pytorch-small", "1x28x28");
    assert_eq!(
        sources(&s),
        [
            "nn.Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), bias=True)",
            "nn.ReLU()",
            "nn.Conv2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), bias=True)",
            "nn.ConvTranspose2d(8, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=True)",
            "nn.ReLU()",
            "nn.ConvTranspose2d(16, 1, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=True)",
            "nn.Sigmoid()",
        ]
    );
    let seq = torch_sequential(&s).unwrap();
    assert_eq!(seq.encoder_modules, 3);
    assert_eq!(seq.param_module, [Some(0), Some(2), Some(3), Some(5)]);
    assert!(
        seq.source()
            .starts_with("nn.Sequential(\n    nn.Conv2d(1, 16,")
    );
    assert!(
        seq.source()
            .contains("# 3: decoder layer 1 (conv_transpose)")
    );
}

#[test]
fn dense_latent_indices_match_the_reference_model() {
    // torch_reference.py: Conv ReLU Pool Conv ReLU Pool Conv ReLU Flatten Linear | Linear ReLU
    // Unflatten Upsample Conv ReLU Upsample Conv ReLU Conv
    let s = spec("dense-latent", "1x28x28");
    let seq = torch_sequential(&s).unwrap();
    let params: Vec<usize> = seq.param_module.iter().flatten().copied().collect();
    assert_eq!(params, [0, 3, 6, 9, 10, 14, 17, 19]);
    assert_eq!(seq.encoder_modules, 10);
    assert_eq!(seq.modules[8].source, "nn.Flatten()");
    assert_eq!(seq.modules[12].source, "nn.Unflatten(1, (128, 7, 7))");
    assert_eq!(seq.modules.len(), 20);
}

#[test]
fn uneven_conv_padding_gets_a_zero_pad_before_the_conv() {
    // `same` with stride 2 on 28 pads 0 before and 1 after (the Keras rule).
    let s = spec_text(
        r#"
        [[encoder]]
        type = "conv"
        filters = 4
        kernel = 3
        stride = 2
        [[decoder]]
        type = "conv_transpose"
        filters = 1
        kernel = 3
        stride = 2
        "#,
        "1x28x28",
    );
    let src = sources(&s);
    assert_eq!(src[0], "nn.ZeroPad2d((0, 1, 0, 1))");
    assert!(src[1].contains("padding=(0, 0)"), "{}", src[1]);
    assert_eq!(
        torch_sequential(&s).unwrap().param_module,
        [Some(1), Some(2)]
    );
}

#[test]
fn odd_same_pooling_uses_ceil_mode_and_bn_follows_the_shape() {
    let s = spec_text(
        r#"
        [[encoder]]
        type = "max_pool"
        size = 2
        padding = "same"
        [[encoder]]
        type = "batch_norm"
        [[encoder]]
        type = "dense"
        units = 4
        [[encoder]]
        type = "batch_norm"
        [[decoder]]
        type = "dense"
        shape = "2x7x7"
        activation = "leaky_relu(0.2)"
        [[decoder]]
        type = "avg_pool"
        size = 3
        stride = 1
        padding = "same"
        [[decoder]]
        type = "upsample"
        factor = 1
        mode = "bilinear"
        "#,
        "2x7x7",
    );
    let src = sources(&s);
    assert_eq!(
        src,
        [
            "nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=True)",
            "nn.BatchNorm2d(2)",
            "nn.Flatten()",
            "nn.Linear(32, 4, bias=True)",
            "nn.BatchNorm1d(4)",
            "nn.Linear(4, 98, bias=True)",
            "nn.LeakyReLU(negative_slope=0.2)",
            "nn.Unflatten(1, (2, 7, 7))",
            "nn.AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), ceil_mode=False, count_include_pad=False)",
            "nn.Upsample(scale_factor=(1.0, 1.0), mode='bilinear', align_corners=False)",
        ]
    );
}

#[test]
fn a_pool_pytorch_cannot_express_is_refused() {
    // 2x2 window, stride 1, `same`: padding only after, which ceil_mode cannot give.
    let s = spec_text(
        r#"
        [[encoder]]
        type = "max_pool"
        size = 2
        stride = 1
        padding = "same"
        [[decoder]]
        type = "conv"
        filters = 1
        kernel = 1
        "#,
        "1x8x8",
    );
    let e = torch_sequential(&s).unwrap_err().to_string();
    assert!(
        e.contains("encoder layer 1 (max_pool): no PyTorch equivalent"),
        "{e}"
    );
}

#[test]
fn every_preset_round_trips_through_safetensors() {
    let device = Device::flex();
    for p in PRESETS {
        for shape in ["1x32x32", "3x32x32"] {
            let s = spec(p.name, shape);
            device.seed(3);
            let model = Autoencoder::new(&s, &device);
            let exported = export_state_dict(&model, &s).unwrap();
            let bytes = exported.to_safetensors().unwrap();
            let read = StateDict::from_safetensors(&bytes, "x").unwrap();
            assert_eq!(read, exported, "{} {shape}", p.name);
            assert_eq!(read.metadata[metadata_key::INPUT], shape);
            let back = import_state_dict(&s, &read, "x", &device).unwrap();
            assert_eq!(
                export_state_dict(&back, &s).unwrap(),
                exported,
                "{} {shape}: weights changed",
                p.name
            );
            let x = input(&s, 2, &device);
            assert_eq!(output(&back, &x), output(&model, &x), "{} {shape}", p.name);
            let n: usize = exported
                .tensors
                .values()
                .map(|t| t.shape.iter().product::<usize>())
                .sum();
            // PyTorch's state dict also holds each batch norm's running statistics and its
            // `num_batches_tracked` counter.
            let norms = s
                .layers()
                .filter(|l| matches!(l.plan, crate::spec::LayerPlan::BatchNorm { .. }))
                .count();
            assert_eq!(
                n,
                s.total_params() + s.total_buffers() + norms,
                "{}",
                p.name
            );
        }
    }
}

#[test]
fn the_spec_in_the_metadata_rebuilds_the_model() {
    let s = spec("oneclass", "1x28x28");
    let model = Autoencoder::new(&s, &Device::flex());
    let state = export_state_dict(&model, &s).unwrap();
    let again =
        ArchSpec::resolve_text("meta", &state.metadata[metadata_key::ARCH], &[], None).unwrap();
    assert_eq!(again, s);
    assert_eq!(state.metadata[metadata_key::ENCODER_MODULES], "8");
    assert_eq!(state.metadata["format"], "pt");
}

/// encoder: flatten, Linear(4, 3); decoder: Linear(3, 4), unflatten to 1x2x2.
fn tiny_dense() -> ValidSpec {
    spec_text(
        r#"
        [[encoder]]
        type = "dense"
        units = 3
        [[decoder]]
        type = "dense"
        shape = "1x2x2"
        "#,
        "1x2x2",
    )
}

fn tiny_dense_state() -> StateDict {
    let mut state = StateDict::default();
    // PyTorch layout: weight [out, in].
    let w1: Vec<f32> = (0..12).map(|k| k as f32 / 10.0).collect();
    state
        .tensors
        .insert("1.weight".into(), StateTensor::f32(vec![3, 4], w1));
    state.tensors.insert(
        "1.bias".into(),
        StateTensor::f32(vec![3], vec![1.0, 2.0, 3.0]),
    );
    state.tensors.insert(
        "2.weight".into(),
        StateTensor::f32(vec![4, 3], vec![0.5; 12]),
    );
    state
        .tensors
        .insert("2.bias".into(), StateTensor::f32(vec![4], vec![0.0; 4]));
    state
}

#[test]
fn linear_weights_are_out_by_in_as_in_pytorch() {
    let device = Device::flex();
    let s = tiny_dense();
    let model = import_state_dict(&s, &tiny_dense_state(), "x", &device).unwrap();
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.0, 2.0], [1, 1, 2, 2]),
        &device,
    );
    let Flow::Vector(code) = model.encode(x) else {
        panic!("expected a vector code")
    };
    // y_o = sum_i W[o, i] x_i + b_o with W[o, i] = (4o + i) / 10.
    let code = code.into_data().try_to_vec::<f32>().unwrap();
    let want = [
        0.0 + 2.0 * 0.3 + 1.0,
        0.4 + 2.0 * 0.7 + 2.0,
        0.8 + 2.0 * 1.1 + 3.0,
    ];
    for (g, w) in code.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{code:?} vs {want:?}");
    }
    assert_eq!(
        export_state_dict(&model, &s).unwrap().tensors["1.weight"],
        tiny_dense_state().tensors["1.weight"]
    );
}

#[test]
fn batch_norm_statistics_travel_both_ways() {
    let device = Device::flex();
    let s = spec_text(
        r#"
        [[encoder]]
        type = "conv"
        filters = 2
        kernel = 3
        [[encoder]]
        type = "batch_norm"
        [[decoder]]
        type = "conv"
        filters = 1
        kernel = 3
        "#,
        "1x6x6",
    );
    let mut state = export_state_dict(&Autoencoder::new(&s, &device), &s).unwrap();
    assert_eq!(
        state.tensors["1.num_batches_tracked"].values,
        Values::I64(vec![0])
    );
    assert_eq!(
        state.tensors["1.num_batches_tracked"].shape,
        Vec::<usize>::new()
    );
    for (key, v) in [
        ("1.weight", [1.5, 0.5]),
        ("1.bias", [0.1, -0.1]),
        ("1.running_mean", [0.3, -0.2]),
        ("1.running_var", [2.0, 0.25]),
    ] {
        state
            .tensors
            .insert(key.into(), StateTensor::f32(vec![2], v.to_vec()));
    }
    let model = import_state_dict(&s, &state, "x", &device).unwrap();
    assert_eq!(
        export_state_dict(&model, &s).unwrap().tensors,
        state.tensors
    );
    // Without the batch counter (PyTorch with track_running_stats and an old checkpoint).
    state.tensors.remove("1.num_batches_tracked");
    assert!(import_state_dict(&s, &state, "x", &device).is_ok());
}

#[test]
fn zscore_statistics_travel_as_buffers_and_the_source_defines_the_module() {
    let device = Device::flex();
    let s = spec_text(
        "[[encoder]]\ntype = \"zscore\"\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 1\n",
        "1x2x2",
    );
    let mut state = export_state_dict(&Autoencoder::new(&s, &device), &s).unwrap();
    assert_eq!(state.tensors["0.mean"].shape, [1, 2, 2]);
    for (key, v) in [
        ("0.mean", [0.1, 0.2, 0.3, 0.4]),
        ("0.std", [1.0, 2.0, 3.0, 4.0]),
    ] {
        state
            .tensors
            .insert(key.into(), StateTensor::f32(vec![1, 2, 2], v.to_vec()));
    }
    let model = import_state_dict(&s, &state, "x", &device).unwrap();
    assert_eq!(
        export_state_dict(&model, &s).unwrap().tensors,
        state.tensors
    );
    let source = torch_sequential(&s).unwrap().source();
    assert!(source.contains("class ZScore(nn.Module)"), "{source}");
    assert!(
        source.contains("model = nn.Sequential(\n    ZScore(1, 2, 2, 0.02),"),
        "{source}"
    );
}

#[test]
fn a_missing_key_is_named_with_its_shape() {
    let s = spec("pytorch-small", "1x28x28");
    let mut state = export_state_dict(&Autoencoder::new(&s, &Device::flex()), &s).unwrap();
    state.tensors.remove("3.weight");
    let e = import_err(&s, &state);
    assert!(
        e.starts_with("m.safetensors: missing 1 key: '3.weight' [8, 16, 3, 3]"),
        "{e}"
    );
}

#[test]
fn unexpected_keys_are_listed_with_the_naming_hint() {
    let s = spec("pytorch-small", "1x28x28");
    let mut state = export_state_dict(&Autoencoder::new(&s, &Device::flex()), &s).unwrap();
    let w = state.tensors.remove("0.weight").unwrap();
    state.tensors.insert("encoder.0.weight".into(), w);
    let e = import_err(&s, &state);
    assert!(
        e.contains("missing 1 key: '0.weight' [16, 1, 3, 3]; unexpected 1 key: 'encoder.0.weight'"),
        "{e}"
    );
    assert!(e.contains("one nn.Sequential"), "{e}");
}

#[test]
fn a_wrong_shape_names_the_key_the_layer_and_both_shapes() {
    let s = spec("pytorch-small", "1x28x28");
    let mut state = export_state_dict(&Autoencoder::new(&s, &Device::flex()), &s).unwrap();
    state.tensors.insert(
        "2.weight".into(),
        StateTensor::f32(vec![8, 16, 5, 5], vec![0.0; 8 * 16 * 25]),
    );
    let e = import_err(&s, &state);
    assert_eq!(
        e,
        "m.safetensors: '2.weight' (encoder layer 2 (conv)) has shape [8, 16, 5, 5], expected [8, 16, 3, 3]"
    );
}

#[test]
fn a_transposed_linear_weight_gets_a_hint() {
    let s = tiny_dense();
    let mut state = tiny_dense_state();
    state.tensors.insert(
        "1.weight".into(),
        StateTensor::f32(vec![4, 3], vec![0.0; 12]),
    );
    let e = import_err(&s, &state);
    assert!(
        e.contains("has shape [4, 3], expected [3, 4] (transposed?"),
        "{e}"
    );
}

#[test]
fn integer_and_non_finite_weights_are_refused() {
    let s = tiny_dense();
    let mut state = tiny_dense_state();
    state.tensors.insert(
        "1.bias".into(),
        StateTensor {
            shape: vec![3],
            values: Values::I64(vec![1, 2, 3]),
            dtype: "I64".into(),
        },
    );
    assert!(
        import_err(&s, &state)
            .contains("tensor '1.bias' has dtype I64; weights must be floating point")
    );
    let mut state = tiny_dense_state();
    state.tensors.insert(
        "2.bias".into(),
        StateTensor::f32(vec![4], vec![0.0, f32::NAN, 0.0, 0.0]),
    );
    assert!(
        import_err(&s, &state)
            .contains("'2.bias' (decoder layer 1 (dense)) holds NaN or infinite values")
    );
}

#[test]
fn a_common_prefix_such_as_state_dict_is_dropped() {
    let s = tiny_dense();
    let mut state = StateDict::default();
    for (k, v) in tiny_dense_state().tensors {
        state.tensors.insert(format!("state_dict.net.{k}"), v);
    }
    assert!(import_state_dict(&s, &state, "x", &Device::flex()).is_ok());
}

#[test]
fn corrupt_files_are_reported_not_panicked_on() {
    let s = tiny_dense();
    let good = export_state_dict(
        &import_state_dict(&s, &tiny_dense_state(), "x", &Device::flex()).unwrap(),
        &s,
    )
    .unwrap()
    .to_safetensors()
    .unwrap();
    for (name, bytes) in [
        ("truncated", good[..good.len() - 3].to_vec()),
        ("header cut", good[..20].to_vec()),
        ("garbage", b"hello, this is not a tensor file".to_vec()),
        (
            "huge header",
            [u64::MAX.to_le_bytes().to_vec(), b"{}".to_vec()].concat(),
        ),
    ] {
        let e = StateDict::from_safetensors(&bytes, "m.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.safetensors: not a valid safetensors file"),
            "{name}: {e}"
        );
    }
    let dir = std::env::temp_dir().join(format!("cae-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pt");
    std::fs::write(&empty, b"").unwrap();
    let e = StateDict::read(&empty).unwrap_err().to_string();
    assert!(
        e.ends_with("not a valid state dict: the file is empty"),
        "{e}"
    );
    let zip = dir.join("bad.pt");
    std::fs::write(&zip, b"PK\x03\x04 not really a zip archive").unwrap();
    let e = StateDict::read(&zip).unwrap_err().to_string();
    assert!(e.contains("bad.pt: not a valid PyTorch checkpoint"), "{e}");
    let e = StateDict::read(&dir.join("nothing.pt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing.pt: cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Written by `bench/interop_check.py fixture` with PyTorch: random weights for the tiny
/// one-class spec below as `.pt` and `.safetensors`, two inputs and PyTorch's outputs.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interop")
        .join(name)
}

/// A float32 `.npy` written by numpy (little-endian, C order).
fn npy_f32(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + len]);
    assert!(
        header.contains("'<f4'") && header.contains("False"),
        "{header}"
    );
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn pytorch_trained_weights_give_pytorchs_outputs() {
    let device = Device::flex();
    let s = ArchSpec::resolve(
        "oneclass",
        &[("base".into(), 4.0), ("latent".into(), 4.0)],
        Some(ImageShape::parse("1x28x28").unwrap()),
    )
    .unwrap();
    let x = npy_f32(&fixture("input.npy"));
    let want = npy_f32(&fixture("output.npy"));
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 1, 28, 28]), &device);
    let mut outputs = Vec::new();
    for (file, format) in [
        ("oneclass-tiny.pt", FileFormat::Pytorch),
        ("oneclass-tiny.safetensors", FileFormat::Safetensors),
    ] {
        let (state, f) = StateDict::read(&fixture(file)).unwrap();
        assert_eq!(f, format);
        let model = import_state_dict(&s, &state, file, &device).unwrap();
        let got = output(&model, &x);
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "{file}: max abs difference {diff}");
        outputs.push(got);
    }
    assert_eq!(outputs[0], outputs[1], ".pt and .safetensors disagree");
}

#[test]
fn skip_connections_give_a_program_with_save_and_concat() {
    let s = spec("inspect-unet", "1x128x128");
    let seq = torch_sequential(&s).unwrap();
    assert!(seq.has_skips);
    let source = seq.source();
    assert!(source.starts_with("import torch\n"), "{source}");
    assert!(source.contains("\nmodel = nn.Sequential(\n"), "{source}");
    let modules = sources(&s);
    let save = modules.iter().position(|m| m == "Save(kept, 'scale1')");
    let concat = modules.iter().position(|m| m == "Concat(kept, 'scale1')");
    assert!(
        matches!((save, concat), (Some(a), Some(b)) if a < b),
        "{modules:?}"
    );
    // No parameters in Save / Concat: the conv after the first concat keeps its own index.
    let first_concat = modules
        .iter()
        .position(|m| m.starts_with("Concat"))
        .unwrap();
    assert!(
        modules[first_concat + 1].starts_with("nn.Conv2d(128, 32,"),
        "{modules:?}"
    );
    // A spec without skips still prints one expression.
    assert!(
        !torch_sequential(&spec("upsample", "1x28x28"))
            .unwrap()
            .has_skips
    );
}

#[test]
fn a_saved_name_is_quoted_for_python() {
    let text = r#"
        name = "q"
        [[encoder]]
        type = "save"
        name = "it's"
        [[decoder]]
        type = "concat"
        from = "it's"
        [[decoder]]
        type = "conv"
        filters = 1
        kernel = 1
    "#;
    let modules = sources(&spec_text(text, "1x4x4"));
    assert_eq!(modules[0], r"Save(kept, 'it\'s')");
}
