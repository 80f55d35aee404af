//! [`DataError`]: every way loading or reshaping a data set can fail.
//!
//! Kept in its own file because every loader (IDX, npy, CIFAR, folders, builtin) shares it.
//! Each message is one line, names the file or path involved, says what is wrong and, where
//! there is one, what would fix it — the CLI prints these verbatim.

use crate::quote::quote;

/// An error while loading, converting or splitting image data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Sets to be joined into one (`denoise::patches::concat`) were none at all.
    #[error("no images to join")]
    NothingToJoin,
    /// Sets to be joined into one have different image shapes.
    #[error("{origin}: images are {shape} but earlier ones are {earlier}")]
    JoinShapes {
        origin: String,
        shape: crate::data::ImageShape,
        earlier: crate::data::ImageShape,
    },
    /// A `--shard` that is not `K/N` with `0 <= K < N`.
    #[error("--shard {}: write K/N with 0 <= K < N, e.g. 0/4 (shards are numbered from 0)", quote(.text))]
    Shard { text: String },
    /// The data source path does not exist.
    #[error(
        "data source {path} does not exist: expected an IDX file, a .npy file, a CIFAR .bin \
         file or folder, an image folder or builtin:shapes", path = quote(.path))]
    NotFound {
        /// The path as given.
        path: String,
    },

    /// The operating system refused to read a file or folder.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// File or folder being read.
        path: String,
        /// The underlying I/O error.
        error: std::io::Error,
    },

    /// A data file holds no bytes at all.
    #[error("{path}: the file is empty (0 bytes); was it cut off while copying or downloading?")]
    Empty {
        /// The file.
        path: String,
    },

    /// The source string is neither a known builtin nor a recognisable file or folder.
    #[error(
        "unknown data source {name}: expected an IDX file, a .npy file, a CIFAR .bin file, \
         an image folder, an image file or builtin:shapes", name = quote(.name))]
    UnknownSource {
        /// The source as given.
        name: String,
    },

    /// A `builtin:` source was malformed (unknown name, bad count or side).
    #[error("invalid builtin data source {spec}: {reason}", spec = quote(.spec))]
    Builtin {
        /// The source as given.
        spec: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// An image shape string (e.g. `1x28x28`) could not be parsed.
    #[error("invalid image shape {text}: {reason} (expected CxHxW, e.g. 1x28x28)", text = quote(.text))]
    Shape {
        /// The text as given.
        text: String,
        /// What is wrong.
        reason: String,
    },

    /// A [`LoadOptions`](super::LoadOptions) field holds an unusable value.
    #[error("invalid load option: {reason}")]
    InvalidOption {
        /// Which option, what is wrong and what is accepted.
        reason: String,
    },

    /// A file ends before the data its header (or record size) promises.
    #[error("{path}: truncated {format} file: {detail}")]
    Truncated {
        /// The file.
        path: String,
        /// File format (`IDX`, `npy`, `CIFAR`).
        format: &'static str,
        /// Declared versus actual sizes.
        detail: String,
    },

    /// A file is not a well-formed file of the format it was taken for.
    #[error("{path}: not a valid {format} file: {detail}")]
    Malformed {
        /// The file.
        path: String,
        /// File format (`IDX`, `npy`, `CIFAR`).
        format: &'static str,
        /// What is wrong (bad magic, bad header, ...).
        detail: String,
    },

    /// A well-formed file uses a feature this loader does not support (dtype, layout, ...).
    #[error("{path}: unsupported {format} file: {detail}")]
    Unsupported {
        /// The file.
        path: String,
        /// File format (`IDX`, `npy`, `CIFAR`).
        format: &'static str,
        /// What is unsupported and how to convert it.
        detail: String,
    },

    /// Floating-point pixel data lies outside [0, 1].
    #[error(
        "{path}: pixel values must lie in [0, 1] but range from {min} to {max}; scale the data \
         first (e.g. divide 0-255 data by 255, or use (a - a.min()) / (a.max() - a.min()))"
    )]
    OutOfRange {
        /// The file.
        path: String,
        /// Smallest value found.
        min: f64,
        /// Largest value found.
        max: f64,
    },

    /// Floating-point pixel data holds NaN or an infinity.
    #[error(
        "{path}: value {value} at image {image} (flat index {index}) is not a finite number; \
         replace NaN/Inf values before loading"
    )]
    NonFinite {
        /// The file.
        path: String,
        /// Index of the image holding the value.
        image: usize,
        /// Flat element index into the array.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// An image file could not be decoded.
    #[error("{path}: not a valid {format} image: {message}")]
    Image {
        /// The image file.
        path: String,
        /// Format expected from the extension (`PNG`, `JPEG`, `BMP`).
        format: String,
        /// The decoder's message.
        message: String,
    },

    /// Images in one folder have different sizes and no resize was requested.
    #[error(
        "{path}: image is {height}x{width} (HxW) but {first} is {first_height}x{first_width}; \
         all images must share one size, or set the resize option to resize every image"
    )]
    SizeMismatch {
        /// The first image whose size differs.
        path: String,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The first image of the folder, whose size sets the norm.
        first: String,
        /// Width of `first`.
        first_width: u32,
        /// Height of `first`.
        first_height: u32,
    },

    /// `--stream` on a source that is not an image folder: containers load into memory.
    #[error(
        "{origin}: --stream reads image folders (and MVTec layouts) file by file; {kind} loads into memory, so train without --stream", origin = quote(.origin)
    )]
    NotStreamable { origin: String, kind: &'static str },

    /// An image of a streamed set no longer decodes to the set's shape (the file was replaced
    /// while training ran).
    #[error(
        "{path}: now decodes to {now} but the data set's images are {shape}; the file changed while training ran"
    )]
    Changed {
        path: String,
        now: crate::data::ImageShape,
        shape: crate::data::ImageShape,
    },

    /// A folder (searched recursively) holds no image files.
    #[error("no images found in folder {path} (looked for .png, .jpg, .jpeg, .bmp, recursively)")]
    NoImages {
        /// The folder.
        path: String,
    },

    /// A symbolic link in an image folder would read images twice or under another class: a
    /// link into another class's folder, back to a folder that holds it (a loop), or to a
    /// folder or image reached another way.
    #[error("{path}: {reason}")]
    Link {
        /// The link (or the entry reached through one).
        path: String,
        /// Where it leads and what to do.
        reason: String,
    },

    /// A labels file holds a different number of labels than its images file has images.
    #[error(
        "{labels_path}: holds {labels} labels but {images_path} holds {images} images; use the \
         labels file that belongs to these images (or remove it to load without labels)"
    )]
    LabelCount {
        /// The images file.
        images_path: String,
        /// The labels file.
        labels_path: String,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },

    /// Class filtering was asked of a data set without labels.
    #[error(
        "cannot keep only classes {classes:?}: the data loaded from {origin} has no labels \
         (labelled sources: IDX with a labels file, CIFAR, class sub-folders, .npy with \
         <stem>_labels.npy, builtin:shapes)"
    )]
    NoLabels {
        /// The requested classes.
        classes: Vec<u32>,
        /// Where the data came from.
        origin: String,
    },

    /// Class filtering left no images.
    #[error("no images left after keeping classes {classes:?}; labels present: {available:?}")]
    NoneSelected {
        /// The requested classes.
        classes: Vec<u32>,
        /// Labels that do occur in the data set.
        available: Vec<u32>,
    },

    /// A train/validation split is impossible with these sizes.
    #[error("cannot split {len} images with validation fraction {fraction}: {reason}")]
    Split {
        /// Number of images in the set.
        len: usize,
        /// Requested validation fraction.
        fraction: f64,
        /// What is wrong.
        reason: String,
    },

    /// A channel conversion other than 1 <-> 3 was requested.
    #[error(
        "cannot convert {from}-channel images to {to} channels: only 1 <-> 3 (grayscale <-> RGB) \
         conversion is supported"
    )]
    Channels {
        /// Channels in the data.
        from: usize,
        /// Channels requested.
        to: usize,
    },

    /// The data would need more memory than can be allocated.
    #[error("{path}: too large to load: {detail}")]
    TooLarge {
        /// The file, folder or source.
        path: String,
        /// Requested size.
        detail: String,
    },
}

/// Flattens a message onto one line (decoder messages occasionally hold newlines).
pub(super) fn one_line(message: impl std::fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
