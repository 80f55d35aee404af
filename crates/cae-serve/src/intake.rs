//! From uploaded bytes to model input, by the run's own rules (`cae::run::ImageRule`, the
//! run's data rule for one image): the header is checked against the limits before any pixel
//! is decoded; images are resized only when the run was trained with `--resize` (a run trained
//! without takes other sizes at their own size, as `cae anomaly score` does), and colour is
//! converted only as the run's config says (`--channels`, or gray → RGB for an RGB model,
//! which is what the training loaders do). Anything else is a 422 that names the expected and
//! the given shape.

use crate::error::ApiError;
use cae::data::{
    ImageHeader, ImageLimits, ImageShape, Normalize, check_header, decode_image, read_header,
    resize_image,
};
use cae::run::RunConfig;
use cae::run::{ImageRule, RunDataError};

/// How many times the model's input area an image of another size may have (a 128×128 model
/// scores up to 512×512).
pub const OTHER_SIZE_AREA: usize = 16;

/// How request images become the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// What the model takes.
    pub input: ImageShape,
    /// True when the run was trained with `--resize`: other sizes are resized to `input`.
    /// Without, they are taken at their own size (the any-size runner of `crate::forward`),
    /// as `cae anomaly score` takes them.
    pub resize: bool,
    /// The channel count the run forced with `--channels`; images are converted to it.
    pub channels: Option<usize>,
    /// The run's per-image brightness normalisation, applied last as its loader did.
    pub normalize: Option<Normalize>,
    pub limits: ImageLimits,
}

impl Intake {
    /// The rules of a run's config (`cae::run::ImageRule`, the run's data rule for one image).
    pub fn from_config(config: &RunConfig, limits: ImageLimits) -> Result<Intake, RunDataError> {
        let rule = ImageRule::of(config)?;
        Ok(Intake {
            input: rule.input,
            resize: rule.resize,
            channels: rule.channels,
            normalize: rule.normalize,
            limits,
        })
    }

    /// Decodes and checks one image; `name` says which in messages ("body", "part 2").
    pub fn prepare(&self, bytes: &[u8], name: &str) -> Result<(ImageShape, Vec<f32>), ApiError> {
        self.admit(bytes, name)?;
        self.decode(bytes, name)
    }

    /// The checks made on the header alone, before any pixel is decoded: not empty and within
    /// the limits. The header it returns says what decoding will cost
    /// ([`ImageHeader::decode_bytes`]).
    pub fn admit(&self, bytes: &[u8], name: &str) -> Result<ImageHeader, ApiError> {
        if bytes.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{name}: empty; send one PNG, JPEG or BMP image"
            )));
        }
        let header = read_header(bytes, name).map_err(ApiError::from_image)?;
        check_header(header, self.limits, name).map_err(ApiError::from_image)?;
        let (h, w) = (header.height as usize, header.width as usize);
        let most = OTHER_SIZE_AREA * self.input.height * self.input.width;
        if !self.resize && h * w > most {
            // The forward pass of another size runs on the one model worker and is not in the
            // decode budget: its activations grow with the area, so the area is bounded.
            return Err(ApiError::unprocessable(format!(
                "{name}: image is {h}x{w} (HxW); this run scores other sizes than its {}x{} up to {OTHER_SIZE_AREA} times its area ({most} pixels): send a smaller image or crop it",
                self.input.height, self.input.width
            )));
        }
        Ok(header)
    }

    /// Decodes an image that [`Intake::admit`] passed into the model's input: resized to the
    /// model's size when the run resized, else at its own size.
    pub fn decode(&self, bytes: &[u8], name: &str) -> Result<(ImageShape, Vec<f32>), ApiError> {
        let (eh, ew) = (self.input.height, self.input.width);
        // An RGB model takes gray images as three equal planes, as its training loader did.
        let force = self.channels.or((self.input.channels == 3).then_some(3));
        let (shape, pixels) =
            decode_image(bytes, force, self.limits, name).map_err(ApiError::from_image)?;
        if shape.channels != self.input.channels {
            return Err(ApiError::unprocessable(format!(
                "{name}: a {}-channel (colour) image, but the model takes {} channel(s); this \
                 run was trained without --channels {}, so colour is not converted: send a \
                 gray image",
                shape.channels, self.input.channels, self.input.channels
            )));
        }
        let (shape, mut pixels) = if (shape.height, shape.width) == (eh, ew) || !self.resize {
            (shape, pixels)
        } else {
            let resized =
                resize_image(&pixels, shape, eh, ew, name).map_err(ApiError::from_image)?;
            (self.input, resized)
        };
        if let Some(n) = self.normalize {
            n.apply(&mut pixels);
        }
        Ok((shape, pixels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb, RgbImage};
    use std::io::Cursor;

    const LIMITS: ImageLimits = ImageLimits {
        max_side: 256,
        max_pixels: 256 * 256,
    };

    fn intake(input: &str, resize: bool, channels: Option<usize>) -> Intake {
        Intake {
            input: ImageShape::parse(input).unwrap(),
            resize,
            channels,
            normalize: None,
            limits: LIMITS,
        }
    }

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gray(w: u32, h: u32) -> Vec<u8> {
        encode(
            GrayImage::from_fn(w, h, |x, y| Luma([((x + y) * 7) as u8])).into(),
            ImageFormat::Png,
        )
    }

    fn colour(w: u32, h: u32) -> Vec<u8> {
        encode(
            RgbImage::from_pixel(w, h, Rgb([200, 10, 10])).into(),
            ImageFormat::Png,
        )
    }

    fn status(r: Result<(ImageShape, Vec<f32>), ApiError>) -> (StatusCode, String) {
        let e = r.unwrap_err();
        (e.status, e.message)
    }

    #[test]
    fn the_right_size_and_channels_pass_in_png_jpeg_and_bmp() {
        let t = intake("1x28x28", false, None);
        assert_eq!(t.prepare(&gray(28, 28), "body").unwrap().1.len(), 784);
        let img: DynamicImage = GrayImage::new(28, 28).into();
        for format in [ImageFormat::Jpeg, ImageFormat::Bmp] {
            let (_, px) = t.prepare(&encode(img.clone(), format), "body").unwrap();
            assert_eq!(px.len(), 784, "{format:?}");
        }
    }

    #[test]
    fn another_size_is_resized_when_the_run_resized_else_kept() {
        let (shape, px) = intake("1x28x28", false, None)
            .prepare(&gray(32, 30), "body")
            .unwrap();
        assert_eq!(shape, ImageShape::parse("1x30x32").unwrap());
        assert_eq!(px.len(), 960);
        let (shape, px) = intake("1x28x28", true, None)
            .prepare(&gray(32, 30), "body")
            .unwrap();
        assert_eq!(shape, ImageShape::parse("1x28x28").unwrap());
        assert_eq!(px.len(), 784);
    }

    #[test]
    fn another_size_beyond_16_times_the_area_is_422_unless_the_run_resizes() {
        let (s, m) = status(intake("1x8x8", false, None).prepare(&gray(40, 40), "part 3"));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            m.starts_with("part 3: image is 40x40") && m.contains("16 times its area"),
            "{m}"
        );
        assert!(
            intake("1x8x8", false, None)
                .prepare(&gray(32, 32), "b")
                .is_ok()
        );
        assert!(
            intake("1x8x8", true, None)
                .prepare(&gray(40, 40), "b")
                .is_ok()
        );
    }

    #[test]
    fn colour_is_converted_only_as_the_run_says() {
        let (s, m) = status(intake("1x8x8", false, None).prepare(&colour(8, 8), "part 2"));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            m.starts_with("part 2:") && m.contains("--channels 1"),
            "{m}"
        );
        let (_, px) = intake("1x8x8", false, Some(1))
            .prepare(&colour(8, 8), "b")
            .unwrap();
        assert_eq!(px.len(), 64);
        assert!((px[0] - (0.299 * 200.0 + 0.587 * 10.0 + 0.114 * 10.0) / 255.0).abs() < 1e-5);
        // Gray into an RGB model: three equal planes.
        let (_, px) = intake("3x8x8", false, None)
            .prepare(&gray(8, 8), "b")
            .unwrap();
        assert_eq!(px.len(), 192);
        assert_eq!(px[..64], px[64..128]);
    }

    #[test]
    fn garbage_empty_and_huge_headers_are_refused_before_decoding() {
        let t = intake("1x28x28", true, None);
        let (s, m) = status(t.prepare(b"", "body"));
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(m.contains("empty"), "{m}");
        let (s, m) = status(t.prepare(b"this is not an image at all", "body"));
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(m.contains("not a valid PNG, JPEG or BMP image"), "{m}");
        let mut cut = gray(28, 28);
        cut.truncate(cut.len() / 2);
        assert_eq!(status(t.prepare(&cut, "body")).0, StatusCode::BAD_REQUEST);
        // Over the side limit: 413 even though the run resizes.
        let (s, m) = status(t.prepare(&gray(300, 10), "body"));
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(m.contains("10x300 (HxW)"), "{m}");
    }

    #[test]
    fn a_config_resize_that_contradicts_the_input_is_refused() {
        let mut config: RunConfig = toml_config();
        assert!(Intake::from_config(&config, LIMITS).unwrap().resize);
        config.data.resize = Some("14x14".into());
        assert!(Intake::from_config(&config, LIMITS).is_err());
        config.data.resize = None;
        config.data.channels = Some(1);
        let t = Intake::from_config(&config, LIMITS).unwrap();
        assert_eq!((t.resize, t.channels), (false, Some(1)));
    }

    fn toml_config() -> RunConfig {
        let spec = cae::spec::ArchSpec::resolve("pytorch-small", &[], None).unwrap();
        RunConfig {
            arch: spec.spec,
            input: "1x28x28".into(),
            data: cae::run::DataConfig {
                source: "x".into(),
                resize: Some("28x28".into()),
                ..Default::default()
            },
            train: Default::default(),
        }
    }
}
