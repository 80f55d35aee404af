//! One encoded image held in memory (PNG, JPEG or BMP bytes, e.g. the body of a network
//! request), decoded header first: the declared size is read and checked against
//! [`ImageLimits`] before any pixel buffer exists, so a 60-byte PNG that claims 100000×100000
//! pixels costs nothing. Pixels come out as the folder loader makes them (planar f32 in
//! [0, 1], gray or RGB by the same rules), so a served model sees what it was trained on.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader};

use super::error::one_line;
use super::folder::{gray_plane, to_planar};
use super::transform::resize_image_into;
use super::{DataError, ImageShape};

/// The largest image [`decode_image`] accepts, checked on the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Longest allowed width or height, in pixels.
    pub max_side: u32,
    /// Most pixels (width × height) allowed.
    pub max_pixels: u64,
}

/// What an image's header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// `PNG`, `JPEG` or `BMP`.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// Bytes a decoded pixel takes (1 for 8-bit gray up to 8 for 16-bit RGBA), as the header
    /// declares it; for a PNG, the widest its colour type can expand to (a `tRNS` chunk adds
    /// alpha).
    pub bytes_per_pixel: u8,
}

impl ImageHeader {
    /// An upper bound, in bytes, of what [`decode_image`] and then [`resize_image`] hold at
    /// once for this image: the decoded buffer, the f32 RGB copy taken while converting (12
    /// bytes a pixel) and the planar result (up to 12), plus 1 MiB for decoder state. A server
    /// budgets concurrent decodes by it, since a small file can declare a large image: a
    /// 127 KiB PNG of 4096×4096 16-bit RGBA pixels costs 512 MiB here.
    pub fn decode_bytes(&self) -> u64 {
        let pixels = u64::from(self.width) * u64::from(self.height);
        pixels.saturating_mul(u64::from(self.bytes_per_pixel) + 24) + (1 << 20)
    }
}

fn format_name(format: ImageFormat) -> Option<&'static str> {
    match format {
        ImageFormat::Png => Some("PNG"),
        ImageFormat::Jpeg => Some("JPEG"),
        ImageFormat::Bmp => Some("BMP"),
        _ => None,
    }
}

fn invalid(name: &str, format: &str, message: impl std::fmt::Display) -> DataError {
    DataError::Image {
        path: name.to_string(),
        format: format.to_string(),
        message: one_line(message),
    }
}

/// A reader over bytes in memory.
type BytesReader<'a> = ImageReader<Cursor<&'a [u8]>>;

/// A reader for `bytes` whose format is known from its first bytes, with the decoder limits
/// set from `limits`, and the format's name.
fn reader<'a>(
    bytes: &'a [u8],
    name: &str,
    limits: Option<ImageLimits>,
) -> Result<(BytesReader<'a>, &'static str), DataError> {
    let unknown = || {
        invalid(
            name,
            "PNG, JPEG or BMP",
            "its first bytes are no known image signature",
        )
    };
    let format = image::guess_format(bytes).map_err(|_| unknown())?;
    let label = format_name(format).ok_or_else(unknown)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    if let Some(l) = limits {
        let mut decoder_limits = image::Limits::default();
        decoder_limits.max_image_width = Some(l.max_side);
        decoder_limits.max_image_height = Some(l.max_side);
        // 16-bit RGBA is the widest buffer a decoder fills: 8 bytes a pixel, plus slack.
        decoder_limits.max_alloc = Some(l.max_pixels.saturating_mul(8).saturating_add(1 << 20));
        reader.limits(decoder_limits);
    }
    Ok((reader, label))
}

/// Width, height and decoded bytes per pixel from a PNG's IHDR chunk, which the format puts
/// first (bytes 16..26), so the size is known even when the rest of the file is missing or
/// bogus.
fn png_ihdr(bytes: &[u8]) -> Option<(u32, u32, u8)> {
    let field = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let (depth, colour) = (*bytes.get(24)?, *bytes.get(25)?);
    // Channels after expansion: gray and RGB may gain alpha from tRNS, palette becomes RGBA.
    let channels = match colour {
        0 | 4 => 2,
        _ => 4,
    };
    let sample = if depth == 16 { 2 } else { 1 };
    Some((field(16)?, field(20)?, channels * sample))
}

/// Reads the format, dimensions and pixel size from the header only.
pub fn read_header(bytes: &[u8], name: &str) -> Result<ImageHeader, DataError> {
    let (reader, format) = reader(bytes, name, None)?;
    let (width, height, bytes_per_pixel) = match png_ihdr(bytes) {
        Some(ihdr) if format == "PNG" => ihdr,
        _ => {
            let decoder = reader
                .into_decoder()
                .map_err(|e| invalid(name, format, e))?;
            let (w, h) = decoder.dimensions();
            (w, h, decoder.color_type().bytes_per_pixel())
        }
    };
    Ok(ImageHeader {
        format,
        width,
        height,
        bytes_per_pixel,
    })
}

/// Checks a header against the limits; the error says what was declared and what is allowed.
pub fn check_header(header: ImageHeader, limits: ImageLimits, name: &str) -> Result<(), DataError> {
    let (w, h) = (header.width, header.height);
    if w == 0 || h == 0 {
        return Err(invalid(
            name,
            header.format,
            format!("the header declares {h}x{w} (HxW) pixels; an image needs at least one"),
        ));
    }
    let pixels = u64::from(w) * u64::from(h);
    if w > limits.max_side || h > limits.max_side || pixels > limits.max_pixels {
        return Err(DataError::TooLarge {
            path: name.to_string(),
            detail: format!(
                "the {} header declares {h}x{w} (HxW) pixels; at most {} a side and {} pixels \
                 are accepted",
                header.format, limits.max_side, limits.max_pixels
            ),
        });
    }
    Ok(())
}

/// Decodes `bytes` into planar f32 in [0, 1]: `channels` 1 or 3 forces luminance or RGB;
/// `None` keeps one plane for a gray image (by colour type, or R = G = B everywhere) and three
/// for a colour one. Alpha is dropped. The header is checked against `limits` first.
pub fn decode_image(
    bytes: &[u8],
    channels: Option<usize>,
    limits: ImageLimits,
    name: &str,
) -> Result<(ImageShape, Vec<f32>), DataError> {
    if let Some(c) = channels
        && c != 1
        && c != 3
    {
        return Err(DataError::InvalidOption {
            reason: format!("channels = {c}: only 1 (grayscale) or 3 (RGB) can be forced"),
        });
    }
    let header = read_header(bytes, name)?;
    check_header(header, limits, name)?;
    let (reader, format) = reader(bytes, name, Some(limits))?;
    let img = reader.decode().map_err(|e| invalid(name, format, e))?;
    let pixels = match channels {
        Some(c) => to_planar(&img, c),
        None => gray_plane(&img).unwrap_or_else(|| to_planar(&img, 3)),
    };
    let plane = img.width() as usize * img.height() as usize;
    let shape = ImageShape {
        channels: pixels.len() / plane.max(1),
        height: img.height() as usize,
        width: img.width() as usize,
    };
    Ok((shape, pixels))
}

/// Resizes one planar image to `height` × `width` with the loaders' filter (triangle).
pub fn resize_image(
    pixels: &[f32],
    shape: ImageShape,
    height: usize,
    width: usize,
    name: &str,
) -> Result<Vec<f32>, DataError> {
    if pixels.len() != shape.len() {
        return Err(DataError::InvalidOption {
            reason: format!(
                "{name}: {} values do not make one {shape} image",
                pixels.len()
            ),
        });
    }
    let mut out = Vec::with_capacity(shape.channels * height * width);
    resize_image_into(pixels, shape, height, width, &mut out, name)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    const LIMITS: ImageLimits = ImageLimits {
        max_side: 64,
        max_pixels: 64 * 64,
    };

    fn png(img: impl Into<image::DynamicImage>) -> Vec<u8> {
        let img: image::DynamicImage = img.into();
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A PNG signature and IHDR chunk declaring `w`×`h` 8-bit gray pixels, and nothing else.
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        let crc = crc32(&ihdr);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(13u32.to_be_bytes());
        out.extend(ihdr);
        out.extend(crc.to_be_bytes());
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn gray_and_colour_images_decode_to_planes() {
        let gray = png(GrayImage::from_fn(3, 2, |x, _| Luma([x as u8 * 100])));
        let (shape, px) = decode_image(&gray, None, LIMITS, "g").unwrap();
        assert_eq!(shape.to_string(), "1x2x3");
        assert!((px[1] - 100.0 / 255.0).abs() < 1e-6);
        // Gray forced to RGB repeats the plane; colour stays three planes.
        let (shape, _) = decode_image(&gray, Some(3), LIMITS, "g").unwrap();
        assert_eq!(shape.channels, 3);
        let red = png(RgbImage::from_pixel(2, 2, Rgb([255, 0, 0])));
        let (shape, px) = decode_image(&red, None, LIMITS, "r").unwrap();
        assert_eq!(shape.to_string(), "3x2x2");
        assert_eq!(&px[..4], &[1.0; 4]);
        let (shape, px) = decode_image(&red, Some(1), LIMITS, "r").unwrap();
        assert_eq!(shape.channels, 1);
        assert!((px[0] - 0.299).abs() < 1e-6);
        // An RGB file whose pixels are all gray is one plane.
        let greyish = png(RgbImage::from_pixel(2, 2, Rgb([9, 9, 9])));
        assert_eq!(
            decode_image(&greyish, None, LIMITS, "q")
                .unwrap()
                .0
                .channels,
            1
        );
    }

    #[test]
    fn huge_declared_dimensions_are_refused_from_the_header() {
        let claim = png_header_only(100_000, 100_000);
        let h = read_header(&claim, "big.png").unwrap();
        assert_eq!((h.format, h.width, h.height), ("PNG", 100_000, 100_000));
        // 8-bit gray may gain alpha from a tRNS chunk: two bytes a pixel at most.
        assert_eq!(h.bytes_per_pixel, 2);
        let e = decode_image(&claim, None, LIMITS, "big.png").unwrap_err();
        assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("100000x100000"), "{e}");
        // Within each side but over the pixel budget.
        let tight = ImageLimits {
            max_side: 64,
            max_pixels: 100,
        };
        let e = decode_image(&png_header_only(20, 20), None, tight, "p").unwrap_err();
        assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn decode_bytes_bounds_what_decoding_a_16_bit_rgba_image_allocates() {
        let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_pixel(
            64,
            32,
            image::Rgba([1000, 2000, 3000, 65535]),
        );
        let bytes = png(img);
        let h = read_header(&bytes, "wide.png").unwrap();
        assert_eq!((h.width, h.height, h.bytes_per_pixel), (64, 32, 8));
        assert_eq!(h.decode_bytes(), 64 * 32 * 32 + (1 << 20));
        // The same for a JPEG, whose header goes through the decoder.
        let mut jpeg = Cursor::new(Vec::new());
        image::DynamicImage::from(RgbImage::new(16, 8))
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .unwrap();
        let h = read_header(jpeg.get_ref(), "j.jpg").unwrap();
        assert_eq!((h.width, h.height, h.bytes_per_pixel), (16, 8, 3));
    }

    #[test]
    fn garbage_truncated_and_unknown_bytes_are_image_errors() {
        for bytes in [
            &b""[..],
            b"hello world, not an image",
            b"GIF89a\x01\x00\x01\x00",
        ] {
            let e = decode_image(bytes, None, LIMITS, "x").unwrap_err();
            assert!(matches!(e, DataError::Image { .. }), "{e}");
        }
        let mut cut = png(GrayImage::new(8, 8));
        cut.truncate(cut.len() - 20);
        let e = decode_image(&cut, None, LIMITS, "cut.png").unwrap_err();
        assert!(
            e.to_string().starts_with("cut.png: not a valid PNG image"),
            "{e}"
        );
        let e = decode_image(&png(GrayImage::new(2, 2)), Some(2), LIMITS, "x").unwrap_err();
        assert!(matches!(e, DataError::InvalidOption { .. }));
    }

    #[test]
    fn resize_changes_the_size_and_checks_the_length() {
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let out = resize_image(&[0.5; 16], shape, 2, 3, "r").unwrap();
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-5));
        assert!(resize_image(&[0.5; 15], shape, 2, 2, "r").is_err());
    }
}
