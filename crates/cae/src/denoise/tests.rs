//! Tests of whole-image and tiled denoising on real (untrained) models.

use super::*;
use crate::model::Autoencoder;
use crate::run::RunConfig;
use crate::spec::ArchSpec;

fn loaded(preset: &str, input: &str, device: &Device) -> LoadedRun {
    let shape = ImageShape::parse(input).unwrap();
    let spec = ArchSpec::resolve(preset, &[], Some(shape)).unwrap();
    device.seed(3);
    let model = Autoencoder::new(&spec, device);
    LoadedRun {
        dir: crate::run::RunDir::new("test-run"),
        config: RunConfig {
            arch: spec.spec.clone(),
            input: input.into(),
            data: Default::default(),
            train: Default::default(),
        },
        spec,
        model,
        device: device.clone(),
    }
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37) % 101) as f32 / 100.0).collect()
}

#[test]
fn tiles_cover_every_pixel_and_blend_to_the_identity() {
    assert_eq!(tile_starts(28, 28), vec![0]);
    assert_eq!(tile_starts(60, 28), vec![0, 14, 28, 32]);
    assert!((0..28).all(|i| hann(i, 28) > 0.0));
    // An identity "model": blending must give the image back exactly, for sizes that are not
    // multiples of the tile and for an image smaller than one tile.
    for (c, h, w) in [(1, 61, 45), (3, 20, 33), (1, 10, 12)] {
        let image = ramp(c * h * w);
        let out: Result<Vec<f32>, ()> =
            blend_tiles(&image, (c, h, w), (28, 28), |t, _| Ok(t.to_vec()));
        let out = out.unwrap();
        assert_eq!(out.len(), image.len());
        let worst = out
            .iter()
            .zip(&image)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "{c}x{h}x{w}: {worst}");
    }
}

#[test]
fn pads_by_reflection_and_crops_back() {
    let image: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 1x2x3
    let p = pad_reflect(&image, (1, 2, 3), 3, 5);
    assert_eq!(
        p,
        vec![0., 1., 2., 2., 1., 3., 4., 5., 5., 4., 3., 4., 5., 5., 4.]
    );
    assert_eq!(crop(&p, (1, 3, 5), 2, 3), image);
}

#[test]
fn fully_convolutional_models_take_any_size() {
    let device = Device::flex();
    let run = loaded("keras-denoise", "1x28x28", &device);
    let expected = {
        let x = Tensor::<4>::from_data(TensorData::new(ramp(784), [1, 1, 28, 28]), &device);
        run.model
            .forward(x)
            .clamp(0.0, 1.0)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let mut d = Denoiser::new(run, &device).unwrap();
    assert_eq!(d.mode, Mode::Whole);
    let shape = |h, w| ImageShape {
        channels: 1,
        height: h,
        width: w,
    };
    // the training size gives exactly the model's output
    assert_eq!(d.denoise(&ramp(784), shape(28, 28), "x").unwrap(), expected);
    // an odd size (padded to a multiple of 4 inside) comes back at its own size
    let out = d.denoise(&ramp(37 * 50), shape(37, 50), "x").unwrap();
    assert_eq!(out.len(), 37 * 50);
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    let e = d
        .denoise(
            &ramp(3 * 784),
            ImageShape {
                channels: 3,
                ..shape(28, 28)
            },
            "rgb.png",
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "rgb.png: images have 3 channel(s) but the model takes 1; pass --channels 1"
    );
}

#[test]
fn dense_models_are_tiled() {
    let device = Device::flex();
    let mut d = Denoiser::new(loaded("dense-latent", "1x28x28", &device), &device).unwrap();
    assert_eq!(d.mode, Mode::Tiles);
    let shape = ImageShape {
        channels: 1,
        height: 50,
        width: 41,
    };
    let out = d.denoise(&ramp(50 * 41), shape, "x").unwrap();
    assert_eq!(out.len(), 50 * 41);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn writes_grey_and_colour_pngs() {
    let grey = encode_image_png(&ramp(6), ImageShape::parse("1x2x3").unwrap()).unwrap();
    let img = image::load_from_memory(&grey).unwrap();
    assert_eq!((img.width(), img.height()), (3, 2));
    assert_eq!(img.color(), image::ColorType::L8);
    assert_eq!(
        img.to_luma8().get_pixel(1, 0).0[0],
        (0.37f32 * 255.0).round() as u8
    );
    let rgb = encode_image_png(&ramp(18), ImageShape::parse("3x2x3").unwrap()).unwrap();
    assert_eq!(
        image::load_from_memory(&rgb).unwrap().color(),
        image::ColorType::Rgb8
    );
    assert!(encode_image_png(&ramp(5), ImageShape::parse("1x2x3").unwrap()).is_err());
}

#[test]
fn benchmark_tunes_on_every_fourth_image_and_scores_the_rest() {
    use crate::data::ImageSet;
    use crate::noise::NoiseSpec;
    let device = Device::flex();
    let mut d = Denoiser::new(loaded("pytorch-small", "1x28x28", &device), &device).unwrap();
    // 10 images of a bright bar on black
    let image: Vec<f32> = (0..784)
        .map(|i: usize| if (i % 28).abs_diff(14) < 3 { 0.9 } else { 0.0 })
        .collect();
    let set = ImageSet {
        shape: ImageShape::parse("1x28x28").unwrap(),
        pixels: image.repeat(10),
        labels: None,
        class_names: None,
        origins: (0..10).map(|i| format!("bar#{i}")).collect(),
    };
    let noise: NoiseSpec = "salt_pepper:0.1".parse().unwrap();
    let (c, samples) = compare::compare(&mut d, &set, &noise, 5, 4, 3).unwrap();
    assert_eq!((c.images, c.tuning_images), (7, 3)); // 0, 4, 8 tune
    assert_eq!(
        samples.rows.iter().map(Vec::len).collect::<Vec<_>>(),
        [3; 5]
    );
    // the noisy score is the mean over images 1, 2, 3, 5, 6, 7, 9 of their own PSNR
    let noisy = compare::corrupt_images(&set, &noise, 5);
    let expected: f64 = [1, 2, 3, 5, 6, 7, 9]
        .iter()
        .map(|&i| crate::quality::psnr(set.image(i), noisy.image(i)))
        .sum::<f64>()
        / 7.0;
    assert!((c.noisy.psnr - expected).abs() < 1e-9);
    // a median filter removes most of 10% salt and pepper noise on a smooth bar
    assert!(c.median3.psnr > c.noisy.psnr + 5.0, "{c:?}");
    assert!(compare::BLUR_SIGMAS.contains(&c.gaussian_sigma));
    // same seed, same noise
    assert_eq!(
        compare::corrupt_images(&set, &noise, 5).pixels,
        noisy.pixels
    );
}
