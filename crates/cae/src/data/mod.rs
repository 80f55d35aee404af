//! Image data sets: the in-memory [`ImageSet`], its [`ImageShape`], and [`load`], which detects
//! what a data source string names and hands it to the right reader.
//!
//! This file owns the shared types, source detection, option validation and the order in which
//! options apply (classes, then limit, then channels, then resize, then normalize). Each file format lives in
//! its own file (`idx`, `npy`, `cifar`, `folder`, `shapes`); pixel conversions shared by all of
//! them live in `transform`, and the error type in `error`; `decode` reads files already in memory.

pub mod augment;
mod cache;
mod cifar;
pub mod decode;
mod error;
mod files;
pub mod fingerprint;
#[cfg(test)]
pub(crate) mod fixture;
mod folder;
mod idx;
mod image_bytes;
pub mod mvtec;
mod npy;
mod shapes;
mod transform;

use crate::quote::quote;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::Path;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use augment::Augment;
pub use cache::CacheUse;
pub use error::DataError;
pub use files::{FileSet, decode_workers};
pub use fingerprint::Fingerprint;
pub use image_bytes::{
    ImageHeader, ImageLimits, check_header, decode_image, read_header, resize_image,
};
pub use shapes::SHAPE_CLASS_NAMES;

/// Channels × height × width of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Number of channels (1 grayscale, 3 RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// Number of values in one image: channels × height × width.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when any dimension is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses `CxHxW`, e.g. `1x28x28` (`X` and `×` are accepted too); every part must be ≥ 1.
    pub fn parse(s: &str) -> Result<ImageShape, DataError> {
        let err = |reason: &str| DataError::Shape {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.trim().split(['x', 'X', '×']).map(str::trim).collect();
        if parts.len() != 3 {
            return Err(err(&format!("found {} part(s), need 3", parts.len())));
        }
        let mut dims = [0usize; 3];
        for (dim, part) in dims.iter_mut().zip(&parts) {
            *dim = part
                .parse()
                .map_err(|_| err(&format!("{part} is not a whole number", part = quote(part))))?;
            if *dim == 0 {
                return Err(err("every dimension must be at least 1"));
            }
        }
        let shape = ImageShape {
            channels: dims[0],
            height: dims[1],
            width: dims[2],
        };
        match dims[0]
            .checked_mul(dims[1])
            .and_then(|v| v.checked_mul(dims[2]))
        {
            Some(_) => Ok(shape),
            None => Err(err("too large")),
        }
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

impl std::str::FromStr for ImageShape {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageShape::parse(s)
    }
}

/// A set of images in memory, NCHW row-major, values scaled to [0, 1].
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Shape of every image.
    pub shape: ImageShape,
    /// All pixels, image after image; `len = n * shape.len()`.
    pub pixels: Vec<f32>,
    /// One label per image when the source has labels.
    pub labels: Option<Vec<u32>>,
    /// Label `i` → class name (folder names, CIFAR names, shape names), when known.
    pub class_names: Option<Vec<String>>,
    /// One per image: file path, `<file>#<index>` for containers, or `builtin:shapes#i`.
    pub origins: Vec<String>,
}

impl ImageSet {
    /// Images made in memory (`pixels` holds whole images of `shape`), without labels; the
    /// origins number them (`#0`, `#1`, …).
    pub fn unlabelled(shape: ImageShape, pixels: Vec<f32>) -> ImageSet {
        let n = pixels.len() / shape.len().max(1);
        ImageSet {
            shape,
            pixels,
            labels: None,
            class_names: None,
            origins: (0..n).map(|i| format!("#{i}")).collect(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// The mean and (population) standard deviation of every pixel over the images, each
    /// `shape.len()` values; `None` for an empty set. What a normal image looks like at each
    /// place: the per-pixel Gaussian baseline and the `zscore` layer are fitted with it.
    pub fn pixel_mean_std(&self) -> Option<MeanStd> {
        let mut stats = PixelStats::new(self.shape.len());
        stats.add(self);
        stats.finish()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The pixels of image `i` (`shape.len()` values).
    ///
    /// # Panics
    /// If `i >= self.len()` (like slice indexing).
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Appends the images of `other`, which must have this set's shape; labels are kept when
    /// both sets have them, else dropped. The one way sets are joined (issue 16 found two, one
    /// of which checked nothing).
    pub fn append(&mut self, other: ImageSet) -> Result<(), DataError> {
        if other.shape != self.shape {
            return Err(DataError::JoinShapes {
                origin: other.origins.first().cloned().unwrap_or_else(|| "?".into()),
                shape: other.shape,
                earlier: self.shape,
            });
        }
        self.pixels.extend(other.pixels);
        self.origins.extend(other.origins);
        match (self.labels.as_mut(), other.labels) {
            (Some(mine), Some(theirs)) => mine.extend(theirs),
            _ => self.labels = None,
        }
        Ok(())
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is `>= self.len()` (like slice indexing).
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            shape: self.shape,
            pixels,
            labels: labels_at(self.labels.as_deref(), indices),
            class_names: self.class_names.clone(),
            origins: indices.iter().map(|&i| self.origins[i].clone()).collect(),
        }
    }

    /// Seeded shuffle-split: returns (train, val), see [`split_indices`].
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(ImageSet, ImageSet), DataError> {
        let (train, val) = split_indices(self.len(), val_fraction, seed)?;
        Ok((self.select(&train), self.select(&val)))
    }

    /// Keeps only images whose label is in `classes`; error if the set has no labels, or if
    /// nothing is left. Labels are kept as they are (not renumbered).
    pub fn filter_classes(&self, classes: &[u32]) -> Result<ImageSet, DataError> {
        let Some(labels) = &self.labels else {
            return Err(DataError::NoLabels {
                classes: classes.to_vec(),
                origin: self.describe_origin(),
            });
        };
        let keep: Vec<usize> = (0..labels.len())
            .filter(|&i| classes.contains(&labels[i]))
            .collect();
        if keep.is_empty() {
            let mut available = labels.clone();
            available.sort_unstable();
            available.dedup();
            return Err(DataError::NoneSelected {
                classes: classes.to_vec(),
                available,
            });
        }
        Ok(self.select(&keep))
    }

    /// Where the set came from, for messages: the first origin without its `#index`.
    fn describe_origin(&self) -> String {
        match self.origins.first() {
            Some(o) => o.split('#').next().unwrap_or(o).to_string(),
            None => "an empty data set".to_string(),
        }
    }
}

/// The labels of the images at `indices`, in that order (for a subset of a labelled set).
pub(crate) fn labels_at(labels: Option<&[u32]>, indices: &[usize]) -> Option<Vec<u32>> {
    labels.map(|l| indices.iter().map(|&i| l[i]).collect())
}

/// The mean and standard deviation of every pixel, each `shape.len()` values.
pub type MeanStd = (Vec<f32>, Vec<f32>);

/// Per-pixel sums of images added a set at a time, for [`ImageSet::pixel_mean_std`] of sets
/// too large to hold at once (a streamed [`FileSet`]).
#[derive(Debug, Clone)]
pub struct PixelStats {
    sum: Vec<f64>,
    sq: Vec<f64>,
    images: usize,
}

impl PixelStats {
    /// Sums for images of `len` values.
    pub fn new(len: usize) -> PixelStats {
        PixelStats {
            sum: vec![0.0; len],
            sq: vec![0.0; len],
            images: 0,
        }
    }

    /// Adds every image of `set` (of the length given to [`PixelStats::new`]).
    pub fn add(&mut self, set: &ImageSet) {
        for i in 0..set.len() {
            for ((s, q), &v) in self
                .sum
                .iter_mut()
                .zip(self.sq.iter_mut())
                .zip(set.image(i))
            {
                *s += f64::from(v);
                *q += f64::from(v) * f64::from(v);
            }
        }
        self.images += set.len();
    }

    /// The per-pixel mean and population standard deviation; `None` when no image was added.
    pub fn finish(self) -> Option<MeanStd> {
        let n = self.images as f64;
        if self.images == 0 {
            return None;
        }
        let mean = self.sum.iter().map(|s| (s / n) as f32).collect();
        let std = self
            .sum
            .iter()
            .zip(&self.sq)
            .map(|(s, q)| {
                let m = s / n;
                (q / n - m * m).max(0.0).sqrt() as f32
            })
            .collect();
        Some((mean, std))
    }
}

/// Seeded shuffle-split of `len` images: (train, val) indices; val gets round(len*fraction)
/// images, at least 1 when fraction>0 and len>=2; error if train would be empty. Both keep the
/// original order; the same seed always gives the same split, for sets in memory and on disk.
pub fn split_indices(
    len: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let err = |reason: &str| DataError::Split {
        len,
        fraction: val_fraction,
        reason: reason.to_string(),
    };
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(err("the fraction must be at least 0 and below 1"));
    }
    let mut n_val = (len as f64 * val_fraction).round() as usize;
    if val_fraction > 0.0 && len >= 2 {
        n_val = n_val.max(1);
    }
    if n_val >= len {
        return Err(err("no images would be left for training"));
    }
    // Fisher–Yates driven directly by ChaCha8 output, so the split only depends on the seed
    // (not on how a rand version implements shuffling).
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..len).rev() {
        let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    let (val_idx, train_idx) = order.split_at_mut(n_val);
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    Ok((train_idx.to_vec(), val_idx.to_vec()))
}

/// What partitioning a data set needs of it, in memory ([`ImageSet`]) or on disk
/// ([`FileSet`]): its size, its labels and class names, and a subset by index.
pub trait Partitionable: Sized {
    fn count(&self) -> usize;
    fn label_list(&self) -> Option<&[u32]>;
    fn class_list(&self) -> Option<&[String]>;
    fn subset(&self, indices: &[usize]) -> Self;
}

/// Both sets keep `labels` and `class_names` fields and `len` / `select` methods of the same
/// meaning; the trait only names them.
macro_rules! partitionable {
    ($set:ty) => {
        impl Partitionable for $set {
            fn count(&self) -> usize {
                self.len()
            }
            fn label_list(&self) -> Option<&[u32]> {
                self.labels.as_deref()
            }
            fn class_list(&self) -> Option<&[String]> {
                self.class_names.as_deref()
            }
            fn subset(&self, indices: &[usize]) -> Self {
                self.select(indices)
            }
        }
    };
}
partitionable!(ImageSet);
partitionable!(FileSet);

/// How [`load`] post-processes a source.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Force 1 or 3 channels (images: convert gray<->rgb; for npy/idx/cifar: 1->3 by repeat,
    /// 3->1 by luminance 0.299/0.587/0.114); other values -> error.
    pub channels: Option<usize>,
    /// (height, width); bilinear/triangle resize (image::imageops) for every source.
    pub resize: Option<(usize, usize)>,
    /// Keep only these labels (applies [`ImageSet::filter_classes`]).
    pub classes: Option<Vec<u32>>,
    /// Keep the first N images after loading (and after class filtering).
    pub limit: Option<usize>,
    /// Per-image brightness normalisation, applied last (after resize).
    pub normalize: Option<Normalize>,
    /// Seed used by `builtin:shapes`.
    pub seed: u64,
    /// Keep only this block of the images (after `limit`); image folders drop the other files
    /// before decoding them.
    pub shard: Option<Shard>,
    /// Of the images `shard` keeps, only these positions (clipped to what there is): the next
    /// block of a command that scores a folder a block at a time (`cae anomaly score`), so
    /// that its memory does not grow with the folder; image folders decode only its files.
    pub window: Option<std::ops::Range<usize>>,
}

/// `range` clipped to `0..len`.
pub(crate) fn clip(range: &std::ops::Range<usize>, len: usize) -> std::ops::Range<usize> {
    range.start.min(len)..range.end.min(len)
}

/// One of `count` contiguous, nearly equal blocks of a sorted image list (`index` from 0), for
/// scoring one archive on many machines: the blocks `0/N`, `1/N`, … concatenated in order are
/// the whole list, so the shards' results concatenate to the unsharded result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with `0 <= K < N` (a Kubernetes Indexed Job's `$JOB_COMPLETION_INDEX/N`).
    pub fn parse(text: &str) -> Result<Shard, DataError> {
        let bad = || DataError::Shard {
            text: text.to_string(),
        };
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The indices of this block of a list of `len` items.
    pub fn range(self, len: usize) -> std::ops::Range<usize> {
        let at = |k: usize| (len as u128 * k as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

/// Per-image brightness normalisation: for inspection images whose overall brightness varies
/// more between good parts than a defect changes it (electroluminescence images of solar cells,
/// X-rays, backlit parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Every value scaled so that the image's median (over all channels) becomes 0.5; values
    /// may then exceed 1. An image whose median is 0 is left as it is.
    Median,
}

impl Normalize {
    /// Normalises one image (CHW values) in place.
    pub fn apply(self, image: &mut [f32]) {
        match self {
            Normalize::Median => {
                let m = crate::imageops::median(image);
                if m > 1e-6 {
                    let k = 0.5 / m;
                    image.iter_mut().for_each(|v| *v *= k);
                }
            }
        }
    }
}

impl std::fmt::Display for Normalize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Normalize::Median => "median",
        })
    }
}

impl std::str::FromStr for Normalize {
    type Err = crate::quote::InvalidValue;
    fn from_str(s: &str) -> Result<Normalize, Self::Err> {
        match s.trim() {
            "median" => Ok(Normalize::Median),
            other => Err(crate::quote::InvalidValue::new(
                "unknown normalisation",
                other,
                "expected median",
            )),
        }
    }
}

/// Loads a data source; the kind is detected from `source`:
/// - `builtin:shapes` (optionally `builtin:shapes:N` N images, default 4000; or
///   `builtin:shapes:NxS` e.g. 2000x32 for side S, default 28): procedural 1-channel images
/// - a path to an IDX images file (gzip or raw, detected by the gzip magic bytes, not the
///   extension); the labels file beside it (`images`→`labels`, `idx3`→`idx1`) is used if present
/// - a path to a `.npy` file (N×H×W or N×C×H×W; u1, f4, f8); labels from a sibling
///   `<stem>_labels.npy` or `<stem>.labels.npy` if present
/// - a CIFAR-10/100 binary batch file (`.bin`), or a folder holding `data_batch_*.bin` (else
///   `test_batch.bin`) for CIFAR-10, or `train.bin` (else `test.bin`) for CIFAR-100
/// - an MVTec AD folder (it holds `train/good/`): its training images, `train/good`
///   (see [`mvtec`] for the test split with masks)
/// - a folder of images (PNG, JPEG, BMP; recursive; sorted paths). When the folder holds no
///   images itself but its immediate sub-folders do, each sub-folder name is a class (labels in
///   name order). All images must share one size unless `resize` is given. Channels default to
///   1 when every image is gray (by colour type, or R = G = B everywhere), else 3.
/// - a single image file (PNG, JPEG, BMP), as a one-image set
///
/// Options then apply in this order: classes, limit, channels, resize, normalize.
pub fn load(source: &str, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    opts.check()?;
    let set = if let Some(spec) = source.strip_prefix("builtin:") {
        shapes::load(source, spec, opts.seed)?
    } else {
        let path = Path::new(source);
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::NotFound {
                path: source.to_string(),
            },
            _ => io_error(path, e),
        })?;
        // The folder loaders (an MVTec train/good folder included) keep the shard's files
        // before decoding them; the shard is not applied again.
        let after_folder = LoadOptions {
            shard: None,
            window: None,
            ..opts.clone()
        };
        if meta.is_dir() && mvtec::is_layout(path) {
            return apply_options(mvtec::load_train(path, opts)?, &after_folder);
        } else if meta.is_dir() {
            match cifar::folder_batches(path)? {
                Some(files) => cifar::load_files(&files)?,
                None => return apply_options(folder::load(path, opts)?, &after_folder),
            }
        } else {
            load_file(source, path, opts)?
        }
    };
    apply_options(set, opts)
}

/// Picks the reader for one file from its first bytes and its extension.
fn load_file(source: &str, path: &Path, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let mut head = Vec::with_capacity(8);
    fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| io_error(path, e))?;
    if head.is_empty() {
        return Err(DataError::Empty { path: show(path) });
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if head.starts_with(npy::MAGIC) || ext == "npy" {
        npy::load(path)
    } else if ext == "bin" {
        cifar::load_files(&[path.to_path_buf()])
    } else if head.starts_with(&idx::GZIP_MAGIC) || idx::looks_like_idx(&head) {
        idx::load(path)
    } else if folder::is_image_path(path) {
        folder::load_file(path, opts)
    } else {
        Err(DataError::UnknownSource {
            name: source.to_string(),
        })
    }
}

impl LoadOptions {
    /// Checks every option is usable ([`load`] does, first); callers that act on the options
    /// before loading check them the same way.
    pub fn check(&self) -> Result<(), DataError> {
        validate_options(self)
    }
}

fn validate_options(opts: &LoadOptions) -> Result<(), DataError> {
    let bad = |reason: String| Err(DataError::InvalidOption { reason });
    if let Some(c) = opts.channels
        && c != 1
        && c != 3
    {
        return bad(format!(
            "channels = {c}: only 1 (grayscale) or 3 (RGB) can be forced"
        ));
    }
    if let Some((h, w)) = opts.resize {
        if h == 0 || w == 0 {
            return bad(format!(
                "resize = {h}x{w} (HxW): both sides must be at least 1"
            ));
        }
        if h > 16384 || w > 16384 {
            return bad(format!(
                "resize = {h}x{w} (HxW): sides above 16384 are not supported"
            ));
        }
    }
    if opts.limit == Some(0) {
        return bad("limit = 0: keep at least 1 image (or leave the limit unset)".to_string());
    }
    if let Some(classes) = &opts.classes
        && classes.is_empty()
    {
        return bad("classes is an empty list: name at least one label".to_string());
    }
    Ok(())
}

/// How many images [`load`] would give for `source` with `opts` (its `window` aside), when
/// `source` is an image folder that decodes only the files asked for (flat or labelled by
/// sub-folder): such a folder can be read a block at a time with [`LoadOptions::window`].
/// `None` for every other source (one file, an MVTec layout's `test/`, CIFAR batches, the
/// builtin sets), which is read whole.
pub fn listed_images(source: &str, opts: &LoadOptions) -> Result<Option<usize>, DataError> {
    let path = Path::new(source);
    if source.starts_with("builtin:") || !path.is_dir() || mvtec::is_layout(path) {
        return Ok(None);
    }
    if cifar::folder_batches(path)?.is_some() {
        return Ok(None);
    }
    opts.check()?;
    let whole = LoadOptions {
        window: None,
        ..opts.clone()
    };
    Ok(Some(folder::list(path, &whole)?.files.len()))
}

/// Applies classes, limit, channels and resize, in that order. Each step is a no-op when the
/// set already satisfies it, so loaders may apply some of them early (the folder loader does).
fn apply_options(mut set: ImageSet, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    if let Some(classes) = &opts.classes {
        set = set.filter_classes(classes)?;
    }
    if let Some(n) = opts.limit
        && set.len() > n
    {
        let keep: Vec<usize> = (0..n).collect();
        set = set.select(&keep);
    }
    if let Some(shard) = opts.shard {
        let keep: Vec<usize> = shard.range(set.len()).collect();
        set = set.select(&keep);
    }
    if let Some(window) = &opts.window {
        let keep: Vec<usize> = clip(window, set.len()).collect();
        set = set.select(&keep);
    }
    if let Some(c) = opts.channels {
        set = transform::convert_channels(set, c)?;
    }
    if let Some((h, w)) = opts.resize {
        set = transform::resize(set, h, w)?;
    }
    if let Some(n) = opts.normalize {
        let len = set.shape.len().max(1);
        set.pixels.chunks_mut(len).for_each(|image| n.apply(image));
    }
    Ok(set)
}

/// Path as shown in messages and origins.
fn show(path: &Path) -> String {
    path.display().to_string()
}

fn io_error(path: &Path, error: std::io::Error) -> DataError {
    DataError::Io {
        path: show(path),
        error,
    }
}

/// Reads a whole file (its size bounds the allocation, not any header).
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|e| io_error(path, e))
}

/// An empty pixel buffer with room for `count` values, or `TooLarge` instead of aborting.
fn alloc_pixels(count: Option<usize>, path: &str) -> Result<Vec<f32>, DataError> {
    let too_large = |detail: String| DataError::TooLarge {
        path: path.to_string(),
        detail,
    };
    let count = count.ok_or_else(|| too_large("the pixel count overflows".to_string()))?;
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| {
        too_large(format!(
            "cannot allocate {count} pixels ({} MiB as f32)",
            count / (1 << 18)
        ))
    })?;
    Ok(v)
}

/// `<file>#<index>` origins for container formats.
fn container_origins(name: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{name}#{i}")).collect()
}

#[cfg(test)]
mod tests;
