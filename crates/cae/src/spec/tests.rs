//! Spec checks: every preset on its inputs, and one test per validation rule.

use super::*;

fn shape(s: &str) -> ImageShape {
    ImageShape::parse(s).unwrap()
}

fn resolve(name: &str, input: &str) -> ValidSpec {
    ArchSpec::resolve(name, &[], Some(shape(input)))
        .unwrap_or_else(|e| panic!("{name} on {input}: {e}"))
}

fn invalid(toml: &str) -> String {
    ArchSpec::resolve_text("test.toml", toml, &[], Some(shape("1x28x28")))
        .unwrap_err()
        .to_string()
}

#[test]
fn pytorch_small_matches_the_tutorial_shapes_and_parameters() {
    let v = resolve("pytorch-small", "1x28x28");
    let outs: Vec<String> = v.layers().map(|l| l.output.to_string()).collect();
    assert_eq!(outs, ["16x14x14", "8x7x7", "16x14x14", "1x28x28"]);
    // PyTorch: 160 + 1160 + 1168 + 145
    assert_eq!(v.total_params(), 160 + 1160 + 1168 + 145);
    assert_eq!(v.bottleneck(), Shape::Volume { c: 8, h: 7, w: 7 });
    assert!((v.compression_ratio() - 2.0).abs() < 1e-12);
}

#[test]
fn galeone_grows_by_2k_then_returns() {
    let v = resolve("galeone", "1x28x28");
    assert_eq!(
        v.encoder[0].output,
        Shape::Volume {
            c: 32,
            h: 34,
            w: 34
        }
    );
    assert_eq!(v.decoder[0].output, Shape::Volume { c: 1, h: 28, w: 28 });
    let v = ArchSpec::resolve(
        "galeone",
        &[("n".into(), 8.0), ("k".into(), 2.0)],
        Some(shape("3x25x25")),
    )
    .unwrap();
    assert_eq!(v.encoder[0].output, Shape::Volume { c: 8, h: 29, w: 29 });
    assert_eq!(v.total_params(), 8 * 3 * 25 + 8 + 3 * 8 * 25 + 3);
    assert_eq!(v.spec.params["n"].as_integer(), Some(8));
}

#[test]
fn keras_denoise_shapes() {
    let v = resolve("keras-denoise", "1x28x28");
    let outs: Vec<String> = v.layers().map(|l| l.output.to_string()).collect();
    assert_eq!(
        outs,
        [
            "32x28x28", "32x14x14", "32x14x14", "32x7x7", "32x14x14", "32x28x28", "1x28x28"
        ]
    );
    // Keras summary: 320 + 9248 + 9248 + 9248 + 289
    assert_eq!(v.total_params(), 320 + 9248 + 9248 + 9248 + 289);
}

#[test]
fn dense_latent_fits_mnist_and_cifar() {
    for (input, flat) in [("1x28x28", "128x7x7"), ("3x32x32", "128x8x8")] {
        let v = resolve("dense-latent", input);
        assert_eq!(v.bottleneck(), Shape::Vector(128), "{input}");
        let reshape = v
            .decoder
            .iter()
            .find(|l| l.plan.kind() == "reshape")
            .unwrap();
        assert_eq!(reshape.output.to_string(), flat);
        assert_eq!(v.decoder.last().unwrap().output.to_string(), input);
    }
    let v = ArchSpec::resolve(
        "dense-latent",
        &[("latent".into(), 16.0)],
        Some(shape("1x28x28")),
    )
    .unwrap();
    assert_eq!(v.bottleneck(), Shape::Vector(16));
    assert!((v.compression_ratio() - 49.0).abs() < 1e-12);
}

#[test]
fn upsample_preset_has_no_transposed_convs() {
    for input in ["1x28x28", "3x32x32"] {
        let v = resolve("upsample", input);
        assert!(v.layers().all(|l| l.plan.kind() != "conv_transpose"));
        assert_eq!(v.decoder.last().unwrap().output.to_string(), input);
    }
}

#[test]
fn every_preset_resolves_on_its_declared_input() {
    for p in PRESETS {
        let v = ArchSpec::resolve(p.name, &[], None).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(v.spec.name, p.name);
        assert!(v.total_params() > 0);
    }
}

#[test]
fn a_declared_parameter_named_like_an_input_dimension_is_refused() {
    let e = invalid(&format!(
        "{HEAD}[params]\nwidth = 16\n[[encoder]]\ntype = \"conv\"\nfilters = \"$width\"\nkernel = 3\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    ));
    assert!(e.contains("parameter 'width' is reserved"), "{e}");
}

#[test]
fn output_channels_sets_what_the_decoder_must_give_back() {
    let v = ArchSpec::resolve("inspect", &[], ImageShape::parse("3x64x64").ok()).unwrap();
    assert!(v.is_segmentation());
    assert_eq!(v.output().to_string(), "1x64x64");
    let e = invalid(&format!(
        "{HEAD}output_channels = 2\n[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    ));
    assert!(
        e.contains("the output is 2x28x28 (output_channels = 2)"),
        "{e}"
    );
    let e = invalid(&format!(
        "{HEAD}output_channels = 0\n[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    ));
    assert!(e.contains("output_channels = 0"), "{e}");
    let plain = ArchSpec::resolve("upsample", &[], None).unwrap();
    assert!(!plain.is_segmentation());
}

const HEAD: &str = "name = \"t\"\n";

#[test]
fn rejects_decoder_that_does_not_return_to_input() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 5\npadding = \"valid\"\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\npadding = \"same\"\n"
    ));
    assert!(
        e.contains("decoder ends at 1x24x24 but the input is 1x28x28"),
        "{e}"
    );
    assert!(e.contains("decoder layer 1 (conv)"), "{e}");
}

#[test]
fn rejects_window_larger_than_input() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 29\npadding = \"valid\"\n\
         [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 1\n"
    ));
    assert!(
        e.contains("encoder layer 1 (conv)") && e.contains("smaller than the 29x29 window"),
        "{e}"
    );
}

#[test]
fn rejects_zero_filters_and_strides() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"conv\"\nfilters = 0\nkernel = 3\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 1\n"
    ));
    assert!(e.contains("filters must be at least 1"), "{e}");
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"conv\"\nfilters = 2\nkernel = 3\nstride = 0\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 1\n"
    ));
    assert!(e.contains("stride must be at least 1"), "{e}");
}

#[test]
fn rejects_output_padding_not_below_stride() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"max_pool\"\nsize = 2\n\
         [[decoder]]\ntype = \"conv_transpose\"\nfilters = 1\nkernel = 2\nstride = 2\noutput_padding = 2\n"
    ));
    assert!(
        e.contains("output_padding [2, 2] must be smaller than the stride"),
        "{e}"
    );
}

#[test]
fn rejects_asymmetric_transposed_padding_and_full() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"max_pool\"\nsize = 2\n[[decoder]]\ntype = \"conv_transpose\"\nfilters = 1\nkernel = 2\nstride = 2\npadding = [0, 0, 1, 1]\n"
    ));
    assert!(e.contains("same padding on opposite sides"), "{e}");
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"max_pool\"\nsize = 2\n[[decoder]]\ntype = \"conv_transpose\"\nfilters = 1\nkernel = 2\nstride = 2\npadding = \"full\"\n"
    ));
    assert!(e.contains("\"full\" is not defined"), "{e}");
}

#[test]
fn rejects_bad_padding_lists_and_dropout_rates() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\npadding = [1, 2, 3]\n[[decoder]]\ntype = \"dropout\"\nrate = 0.1\n"
    ));
    assert!(e.contains("padding [1, 2, 3]"), "{e}");
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"dropout\"\nrate = 1.0\n[[decoder]]\ntype = \"dropout\"\nrate = 0.1\n"
    ));
    assert!(e.contains("rate must be in [0, 1)"), "{e}");
}

#[test]
fn rejects_dense_vector_feeding_a_conv_without_a_matching_volume() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"dense\"\nunits = 10\n\
         [[decoder]]\ntype = \"dense\"\nunits = 100\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    ));
    assert!(
        e.contains("decoder layer 2 (conv): needs an image volume but gets a vector of 100 values"),
        "{e}"
    );
    // with an explicit shape it fits
    let ok = ArchSpec::resolve_text(
        "t",
        &format!("{HEAD}[[encoder]]\ntype = \"dense\"\nunits = 10\n[[decoder]]\ntype = \"dense\"\nshape = \"4x28x28\"\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"),
        &[],
        Some(shape("1x28x28")),
    )
    .unwrap();
    assert_eq!(ok.decoder.last().unwrap().output.to_string(), "1x28x28");
}

#[test]
fn rejects_dense_with_both_units_and_shape() {
    let e = invalid(&format!(
        "{HEAD}[[encoder]]\ntype = \"dense\"\nunits = 10\nshape = \"1x28x28\"\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    ));
    assert!(e.contains("either units or shape"), "{e}");
}

#[test]
fn rejects_unknown_keys_and_empty_parts() {
    let e = invalid(&format!(
        "{HEAD}encoderr = []\n[[encoder]]\ntype = \"max_pool\"\nsize = 2\n[[decoder]]\ntype = \"upsample\"\nfactor = 2\n"
    ));
    assert!(e.contains("encoderr"), "{e}");
    let e = invalid(&format!(
        "{HEAD}encoder = []\n[[decoder]]\ntype = \"upsample\"\nfactor = 2\n"
    ));
    assert!(e.contains("encoder has no layers"), "{e}");
}

#[test]
fn rejects_unknown_params_and_missing_input() {
    let e = ArchSpec::resolve("galeone", &[("m".into(), 1.0)], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown parameter 'm'") && !e.contains("n, k") && e.contains("k, n"),
        "{e}"
    );
    let e = ArchSpec::resolve_text("x.toml", "[[encoder]]\ntype = \"max_pool\"\nsize = 2\n[[decoder]]\ntype = \"upsample\"\nfactor = 2\n", &[], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no input shape"), "{e}");
    let e = ArchSpec::resolve("no-such-preset", &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown architecture 'no-such-preset'") && e.contains("pytorch-small"),
        "{e}"
    );
    assert!(!e.contains("did you mean"), "{e}");
    let e = ArchSpec::resolve("inspect-alligned", &[], None)
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("(did you mean 'inspect-aligned'?)"), "{e}");
}

#[test]
fn same_padding_pool_keeps_odd_sizes() {
    let v = ArchSpec::resolve_text(
        "t",
        &format!(
            "{HEAD}[[encoder]]\ntype = \"max_pool\"\nsize = 2\npadding = \"same\"\n[[decoder]]\ntype = \"upsample\"\nfactor = 2\n"
        ),
        &[],
        Some(shape("1x7x7")),
    );
    let e = v.unwrap_err().to_string();
    assert!(
        e.contains("decoder ends at 1x8x8 but the input is 1x7x7"),
        "{e}"
    );
}

#[test]
fn summary_reports_totals() {
    let s = resolve("pytorch-small", "1x28x28").summary();
    assert_eq!(s.total_params, 2633);
    assert_eq!(s.bottleneck, "8x7x7");
    let text = s.to_string();
    assert!(text.contains("compression ratio: 2.00"), "{text}");
}

/// A two-scale U-Net: `save` before the pool, `concat` after the upsample.
const UNET: &str = r#"
name = "unet"
[[encoder]]
type = "conv"
filters = 4
kernel = 3
[[encoder]]
type = "save"
name = "full"
[[encoder]]
type = "max_pool"
size = 2
[[encoder]]
type = "conv"
filters = 8
kernel = 3
[[decoder]]
type = "upsample"
factor = 2
[[decoder]]
type = "concat"
from = "full"
[[decoder]]
type = "conv"
filters = 1
kernel = 3
"#;

#[test]
fn concat_appends_the_saved_channels() {
    let v = ArchSpec::resolve_text("unet.toml", UNET, &[], Some(shape("1x28x28"))).unwrap();
    let outs: Vec<String> = v.layers().map(|l| l.output.to_string()).collect();
    assert_eq!(
        outs,
        [
            "4x28x28", "4x28x28", "4x14x14", "8x14x14", "8x28x28", "12x28x28", "1x28x28"
        ]
    );
    // The conv after the concat sees 8 + 4 channels.
    assert_eq!(
        v.total_params(),
        (9 * 4 + 4) + (4 * 9 * 8 + 8) + (12 * 9 + 1)
    );
    assert!(matches!(
        v.decoder[1].plan,
        LayerPlan::Concat {
            slot: 0,
            channels: 4,
            ..
        }
    ));
}

#[test]
fn concat_of_an_unknown_name_is_refused() {
    let e = invalid(&UNET.replace("from = \"full\"", "from = \"ful\""));
    assert!(
        e.contains(
            "decoder layer 2 (concat): from = 'ful' is not saved by an earlier layer (saved: 'full')"
        ),
        "{e}"
    );
    let e = invalid(&UNET.replace(
        "type = \"save\"\nname = \"full\"",
        "type = \"dropout\"\nrate = 0.0",
    ));
    assert!(e.contains("no earlier layer saves a volume"), "{e}");
}

#[test]
fn concat_at_another_size_is_refused() {
    let e = invalid(&UNET.replace("factor = 2", "factor = 1"));
    assert!(
        e.contains(
            "decoder layer 2 (concat): the flow is 14x14 (HxW) but 'full' was saved at 28x28"
        ),
        "{e}"
    );
}

#[test]
fn a_name_saved_twice_is_refused() {
    let twice = UNET.replace(
        "[[encoder]]\ntype = \"max_pool\"",
        "[[encoder]]\ntype = \"save\"\nname = \"full\"\n[[encoder]]\ntype = \"max_pool\"",
    );
    let e = invalid(&twice);
    assert!(
        e.contains("encoder layer 3 (save): name 'full' is already saved"),
        "{e}"
    );
}

#[test]
fn the_inspect_unet_preset_joins_three_scales() {
    let v = resolve("inspect-unet", "1x128x128");
    let concats: Vec<usize> = v
        .decoder
        .iter()
        .filter_map(|l| match l.plan {
            LayerPlan::Concat { channels, .. } => Some(channels),
            _ => None,
        })
        .collect();
    assert_eq!(concats, [64, 32, 16]);
    assert_eq!(v.output().channels, 1);
}

const ZSCORE: &str = r#"
[[encoder]]
type = "zscore"
[[encoder]]
type = "conv"
filters = 4
kernel = 3
padding = "same"
[[decoder]]
type = "conv"
filters = 1
kernel = 3
padding = "same"
"#;

#[test]
fn zscore_doubles_the_channels_and_holds_buffers_of_the_input() {
    let v = ArchSpec::resolve_text("z.toml", ZSCORE, &[], Some(shape("1x28x28"))).unwrap();
    assert_eq!(v.encoder[0].output.to_string(), "2x28x28");
    assert!(matches!(
        v.encoder[0].plan,
        LayerPlan::Zscore {
            channels: 1,
            height: 28,
            width: 28,
            ..
        }
    ));
    assert_eq!(v.total_params(), (2 * 9 * 4 + 4) + (4 * 9 + 1));
    assert_eq!(v.total_buffers(), 2 * 28 * 28);
    assert!(v.zscore().is_some());
}

#[test]
fn zscore_only_as_the_first_encoder_layer() {
    let second = ZSCORE.replace(
        "[[decoder]]\ntype = \"conv\"",
        "[[encoder]]\ntype = \"zscore\"\n[[decoder]]\ntype = \"conv\"",
    );
    let e = invalid(&second);
    assert!(
        e.contains("encoder layer 3 (zscore): only the first encoder layer may be a zscore"),
        "{e}"
    );
    let e = invalid(&ZSCORE.replace("type = \"zscore\"", "type = \"zscore\"\nfloor = 0"));
    assert!(
        e.contains("encoder layer 1 (zscore): floor must be a positive number"),
        "{e}"
    );
}

#[test]
fn a_zscore_spec_refuses_another_size() {
    let v = ArchSpec::resolve_text("z.toml", ZSCORE, &[], Some(shape("1x28x28"))).unwrap();
    let e = v.at(shape("1x56x56")).unwrap_err().to_string();
    assert!(
        e.contains(
            "encoder layer 1 (zscore) holds per-pixel statistics of 28x28 images and cannot run on 56x56 images"
        ),
        "{e}"
    );
    assert!(v.at(shape("1x28x28")).is_ok());
}
