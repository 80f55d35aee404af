//! Folders of images (PNG, JPEG, BMP), searched recursively, and single image files.
//!
//! Owns class detection from immediate sub-folders, a header-only first pass that checks every
//! size before any pixel is decoded, gray-or-colour detection, and decoding into planar f32.
//! The walk itself (sorted, hidden entries skipped, and the rule for symbolic links: followed,
//! but every image read once, under the folder it lives in) is [`tree`]. Class filtering and
//! the limit are applied to the file list, so only kept images are decoded.

mod tree;

use std::fs;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};

use super::error::one_line;
use super::transform::{LUMA, resize_image_into};
use super::{DataError, ImageSet, ImageShape, LoadOptions, alloc_pixels, io_error, show};

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// True when the path has an image extension this loader decodes.
pub(super) fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files under `root` that `opts` keeps (classes, limit, shard), sorted, with their
/// labels and the class names when the immediate sub-folders are classes; nothing is decoded.
pub(super) struct Listing {
    pub files: Vec<PathBuf>,
    pub labels: Option<Vec<u32>>,
    pub class_names: Option<Vec<String>>,
}

/// Lists the images under `root`. When `root` holds no images itself but its immediate
/// sub-folders do, each such sub-folder is a class (labels in name order).
pub(super) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    let (mut tree, direct, subdirs) = tree::Tree::open(root)?;
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    let mut class_names = None;
    let mut per_class = Vec::new();
    for (i, dir) in subdirs.iter().enumerate() {
        let mut found = Vec::new();
        tree.walk(dir, i, &mut found)?;
        found.sort();
        per_class.push((&dir.path, found));
    }
    if direct.is_empty() && per_class.iter().any(|(_, f)| !f.is_empty()) {
        let mut names = Vec::new();
        for (dir, found) in per_class.into_iter().filter(|(_, f)| !f.is_empty()) {
            let label = names.len() as u32;
            names.push(
                dir.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            );
            files.extend(found.into_iter().map(|f| (f, label)));
        }
        class_names = Some(names);
    } else {
        let mut all = direct;
        all.extend(per_class.into_iter().flat_map(|(_, f)| f));
        all.sort();
        files.extend(all.into_iter().map(|f| (f, 0)));
    }
    if files.is_empty() {
        return Err(DataError::NoImages { path: show(root) });
    }
    let labelled = class_names.is_some();
    if let Some(classes) = &opts.classes {
        if !labelled {
            return Err(DataError::NoLabels {
                classes: classes.clone(),
                origin: show(root),
            });
        }
        let available: Vec<u32> = (0..class_names.as_ref().map_or(0, Vec::len) as u32).collect();
        files.retain(|(_, l)| classes.contains(l));
        if files.is_empty() {
            return Err(DataError::NoneSelected {
                classes: classes.clone(),
                available,
            });
        }
    }
    if let Some(n) = opts.limit {
        files.truncate(n);
    }
    if let Some(shard) = opts.shard {
        files = files[shard.range(files.len())].to_vec();
        if files.is_empty() {
            return Err(DataError::InvalidOption {
                reason: format!(
                    "--shard {}/{}: {} holds fewer images than shards, so this one is empty",
                    shard.index,
                    shard.count,
                    show(root)
                ),
            });
        }
    }
    if let Some(window) = &opts.window {
        files = files[super::clip(window, files.len())].to_vec();
    }
    Ok(Listing {
        labels: labelled.then(|| files.iter().map(|(_, l)| *l).collect()),
        files: files.into_iter().map(|(p, _)| p).collect(),
        class_names,
    })
}

/// Loads every image under `root` ([`list`], then every file decoded).
pub(super) fn load(root: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let listing = list(root, opts)?;
    let (shape, pixels) = decode_files(&listing.files, opts)?;
    Ok(ImageSet {
        shape,
        pixels,
        labels: listing.labels,
        class_names: listing.class_names,
        origins: listing.files.iter().map(|p| show(p)).collect(),
    })
}

/// Decodes `paths` as one set ([`decode_all`]): the common shape and every pixel.
pub(super) fn decode_files(
    paths: &[PathBuf],
    opts: &LoadOptions,
) -> Result<(ImageShape, Vec<f32>), DataError> {
    let sources: Vec<ImageSource> = paths.iter().map(|p| ImageSource::File(p)).collect();
    decode_all(&sources, opts)
}

/// What an image file's header says.
struct Header {
    width: u32,
    height: u32,
    /// The colour type has colour channels (the pixels may still all be gray).
    colour: bool,
}

/// The header of the image in `path`, read without decoding the pixels.
fn header(path: &Path) -> Result<Header, DataError> {
    let source = ImageSource::File(path);
    let reader = source.reader()?;
    let guessed = reader.format();
    let decoder = reader
        .into_decoder()
        .map_err(|e| image_error(&source, guessed, e))?;
    let (width, height) = decoder.dimensions();
    Ok(Header {
        width,
        height,
        colour: decoder.color_type().has_color(),
    })
}

/// Whether the image in `path` is gray: by its colour type from the header alone, else by
/// content (R = G = B everywhere, decoded), the rule [`decode_all`] applies to a whole set.
pub(super) fn is_gray(path: &Path) -> Result<bool, DataError> {
    if !header(path)?.colour {
        return Ok(true);
    }
    let source = ImageSource::File(path);
    let reader = source.reader()?;
    let guessed = reader.format();
    let img = reader
        .decode()
        .map_err(|e| image_error(&source, guessed, e))?;
    Ok(gray_plane(&img).is_some())
}

/// The height and width in the header of the image in `path` (nothing decoded).
pub(super) fn header_size(path: &Path) -> Result<(usize, usize), DataError> {
    let Header { width, height, .. } = header(path)?;
    Ok((height as usize, width as usize))
}

/// Loads a single image file as a one-image set.
pub(super) fn load_file(path: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let (shape, pixels) = decode_all(&[ImageSource::File(path)], opts)?;
    Ok(ImageSet {
        shape,
        pixels,
        labels: None,
        class_names: None,
        origins: vec![show(path)],
    })
}

/// Decodes in-memory image files (PNG, JPEG, BMP; the format is guessed from the bytes) as the
/// folder loader decodes files: one shape for all, gray or colour detection, `opts.channels`
/// and `opts.resize` applied. Each `(name, bytes)` pair names its image in messages and origins.
pub(super) fn decode_images(
    images: &[(&str, &[u8])],
    opts: &LoadOptions,
) -> Result<ImageSet, DataError> {
    let sources: Vec<ImageSource> = images
        .iter()
        .map(|&(name, bytes)| ImageSource::Memory { name, bytes })
        .collect();
    if sources.is_empty() {
        return Err(DataError::NoImages {
            path: "the given images".to_string(),
        });
    }
    let (shape, pixels) = decode_all(&sources, opts)?;
    Ok(ImageSet {
        shape,
        pixels,
        labels: None,
        class_names: None,
        origins: images.iter().map(|(n, _)| n.to_string()).collect(),
    })
}

/// Where one image's bytes come from.
#[derive(Clone, Copy)]
enum ImageSource<'a> {
    File(&'a Path),
    Memory { name: &'a str, bytes: &'a [u8] },
}

impl ImageSource<'_> {
    /// The name shown in messages and origins.
    fn name(&self) -> String {
        match self {
            ImageSource::File(p) => show(p),
            ImageSource::Memory { name, .. } => name.to_string(),
        }
    }

    /// A reader with the format guessed from the first bytes and the decoding limits set.
    fn reader(&self) -> Result<ImageReader<Box<dyn SeekRead + '_>>, DataError> {
        let empty = || DataError::Empty { path: self.name() };
        let inner: Box<dyn SeekRead + '_> = match *self {
            ImageSource::File(path) => {
                let file = fs::File::open(path).map_err(|e| io_error(path, e))?;
                if file.metadata().map_err(|e| io_error(path, e))?.len() == 0 {
                    return Err(empty());
                }
                Box::new(std::io::BufReader::new(file))
            }
            ImageSource::Memory { bytes: [], .. } => return Err(empty()),
            ImageSource::Memory { bytes, .. } => Box::new(std::io::Cursor::new(bytes)),
        };
        let mut reader = ImageReader::new(inner);
        // The extension is the fallback when the first bytes match no known format.
        if let Ok(format) = image::ImageFormat::from_path(self.name()) {
            reader.set_format(format);
        }
        let mut reader = reader.with_guessed_format().map_err(|e| DataError::Io {
            path: self.name(),
            error: e,
        })?;
        reader.limits(decode_limits());
        Ok(reader)
    }
}

/// A buffered, seekable byte stream (a file or memory).
trait SeekRead: std::io::BufRead + std::io::Seek {}
impl<T: std::io::BufRead + std::io::Seek> SeekRead for T {}

/// What one decoded image may take in memory (the image crate's own default), checked on the
/// header before anything is decoded so a header that declares a huge image is refused at once.
const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// The format named in messages: the one the first bytes revealed, else the extension's.
fn format_name(name: &str, guessed: Option<image::ImageFormat>) -> String {
    match guessed {
        Some(image::ImageFormat::Png) => return "PNG".to_string(),
        Some(image::ImageFormat::Jpeg) => return "JPEG".to_string(),
        Some(image::ImageFormat::Bmp) => return "BMP".to_string(),
        Some(other) => return format!("{other:?}").to_ascii_uppercase(),
        None => {}
    }
    match Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "PNG".to_string(),
        Some("jpg" | "jpeg") => "JPEG".to_string(),
        Some("bmp") => "BMP".to_string(),
        Some(other) => other.to_ascii_uppercase(),
        None => "image".to_string(),
    }
}

fn image_error(
    source: &ImageSource,
    guessed: Option<image::ImageFormat>,
    e: image::ImageError,
) -> DataError {
    let name = source.name();
    match e {
        image::ImageError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            DataError::Io {
                path: name,
                error: io,
            }
        }
        other => DataError::Image {
            format: format_name(&name, guessed),
            path: name,
            message: one_line(other),
        },
    }
}

/// Refuses a header that declares an image larger than [`MAX_DECODED_BYTES`].
fn check_declared_size(source: &ImageSource, decoder: &impl ImageDecoder) -> Result<(), DataError> {
    if decoder.total_bytes() <= MAX_DECODED_BYTES {
        return Ok(());
    }
    let (w, h) = decoder.dimensions();
    Err(DataError::TooLarge {
        path: source.name(),
        detail: format!(
            "the header declares a {h}x{w} (HxW) image of {} bytes; images above {} MiB are \
             refused",
            decoder.total_bytes(),
            MAX_DECODED_BYTES >> 20
        ),
    })
}

/// One image file decoded as it is stored (8-bit images one byte per value), its header
/// checked first as a folder load checks it: where a streamed set's reads and its cache
/// ([`super::cache`]) start.
pub(super) fn decode_stored(path: &Path) -> Result<DynamicImage, DataError> {
    let source = ImageSource::File(path);
    let reader = source.reader()?;
    let guessed = reader.format();
    let decoder = reader
        .into_decoder()
        .map_err(|e| image_error(&source, guessed, e))?;
    check_declared_size(&source, &decoder)?;
    DynamicImage::from_decoder(decoder).map_err(|e| image_error(&source, guessed, e))
}

/// One decoded image as planar values, by the rules [`decode_all`] applies to a set of one:
/// `opts.channels` if forced, else one plane when the image is gray and RGB when not; resized
/// to `opts.resize` when given (`name` for messages).
pub(super) fn planes_of(
    img: &DynamicImage,
    opts: &LoadOptions,
    name: &str,
) -> Result<(ImageShape, Vec<f32>), DataError> {
    let (channels, planar) = match opts.channels {
        Some(c) => (c, to_planar(img, c)),
        None => match gray_plane(img) {
            Some(g) => (1, g),
            None => (3, to_planar(img, 3)),
        },
    };
    let native = ImageShape {
        channels,
        height: img.height() as usize,
        width: img.width() as usize,
    };
    let (height, width) = opts.resize.unwrap_or((native.height, native.width));
    if (native.height, native.width) == (height, width) {
        return Ok((native, planar));
    }
    let mut pixels = Vec::with_capacity(channels * height * width);
    resize_image_into(&planar, native, height, width, &mut pixels, name)?;
    let shape = ImageShape {
        channels,
        height,
        width,
    };
    Ok((shape, pixels))
}

/// Header pass (sizes only, nothing decoded) then decode pass; returns the common shape and
/// all pixels. Without a forced channel count, images are kept as one plane while every image
/// so far is gray (by colour type or by content: R = G = B everywhere, which also catches
/// gray palette PNG/BMP files); the first colour image switches the whole set to RGB.
fn decode_all(
    sources: &[ImageSource],
    opts: &LoadOptions,
) -> Result<(ImageShape, Vec<f32>), DataError> {
    let root = sources.first().map_or_else(String::new, ImageSource::name);
    let mut first: Option<(u32, u32)> = None;
    for source in sources {
        let reader = source.reader()?;
        let guessed = reader.format();
        let decoder = reader
            .into_decoder()
            .map_err(|e| image_error(source, guessed, e))?;
        let (w, h) = decoder.dimensions();
        check_declared_size(source, &decoder)?;
        match first {
            None => first = Some((w, h)),
            Some((fw, fh)) if opts.resize.is_none() && (fw, fh) != (w, h) => {
                return Err(mismatch(&source.name(), (w, h), &root, (fw, fh)));
            }
            Some(_) => {}
        }
    }
    let (fw, fh) = first.unwrap_or((0, 0));
    let (height, width) = opts.resize.unwrap_or((fh as usize, fw as usize));
    let plane = height * width;
    let mut channels = opts.channels.unwrap_or(1);
    let mut pixels = alloc_pixels(sources.len().checked_mul(channels * plane), &root)?;
    for (i, source) in sources.iter().enumerate() {
        let reader = source.reader()?;
        let guessed = reader.format();
        let img = reader
            .decode()
            .map_err(|e| image_error(source, guessed, e))?;
        let planar = match opts.channels {
            Some(c) => to_planar(&img, c),
            None if channels == 1 => match gray_plane(&img) {
                Some(g) => g,
                None => {
                    // First colour image: earlier gray images become RGB.
                    let mut rgb = alloc_pixels(sources.len().checked_mul(3 * plane), &root)?;
                    for done in pixels.chunks_exact(plane.max(1)).take(i) {
                        for _ in 0..3 {
                            rgb.extend_from_slice(done);
                        }
                    }
                    pixels = rgb;
                    channels = 3;
                    to_planar(&img, 3)
                }
            },
            None => to_planar(&img, 3),
        };
        let native = ImageShape {
            channels,
            height: img.height() as usize,
            width: img.width() as usize,
        };
        if (native.height, native.width) == (height, width) {
            pixels.extend_from_slice(&planar);
        } else if opts.resize.is_some() {
            resize_image_into(&planar, native, height, width, &mut pixels, &source.name())?;
        } else {
            return Err(mismatch(
                &source.name(),
                (img.width(), img.height()),
                &root,
                (fw, fh),
            ));
        }
    }
    let shape = ImageShape {
        channels,
        height,
        width,
    };
    Ok((shape, pixels))
}

pub(super) fn mismatch(
    path: &str,
    (width, height): (u32, u32),
    first: &str,
    (fw, fh): (u32, u32),
) -> DataError {
    DataError::SizeMismatch {
        path: path.to_string(),
        width,
        height,
        first: first.to_string(),
        first_width: fw,
        first_height: fh,
    }
}

/// The single plane of a gray image (by colour type, or RGB with R = G = B), else None.
pub(super) fn gray_plane(img: &DynamicImage) -> Option<Vec<f32>> {
    if !img.color().has_color() {
        return Some(img.to_luma32f().into_raw());
    }
    let rgb = img.to_rgb32f();
    let raw = rgb.as_raw();
    raw.chunks_exact(3)
        .all(|p| p[0] == p[1] && p[1] == p[2])
        .then(|| raw.chunks_exact(3).map(|p| p[0].clamp(0.0, 1.0)).collect())
}

/// Planar f32 in [0, 1] with 1 (luminance) or 3 (RGB) channels; alpha is dropped.
pub(super) fn to_planar(img: &DynamicImage, channels: usize) -> Vec<f32> {
    if channels == 1 && !img.color().has_color() {
        return img.to_luma32f().into_raw();
    }
    let rgb = img.to_rgb32f();
    let plane = rgb.width() as usize * rgb.height() as usize;
    let raw = rgb.as_raw();
    if channels == 1 {
        raw.chunks_exact(3)
            .map(|p| (LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]).clamp(0.0, 1.0))
            .collect()
    } else {
        let mut out = vec![0.0f32; 3 * plane];
        for (i, p) in raw.chunks_exact(3).enumerate() {
            out[i] = p[0].clamp(0.0, 1.0);
            out[plane + i] = p[1].clamp(0.0, 1.0);
            out[2 * plane + i] = p[2].clamp(0.0, 1.0);
        }
        out
    }
}

#[cfg(test)]
mod tests;
