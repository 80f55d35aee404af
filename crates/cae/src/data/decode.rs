//! Data files already in memory: the decoders [`load`](super::load) uses, without the file
//! system (no labels file found beside, no folder walk). For callers that hold the bytes — the
//! fuzz targets in `fuzz/`, a server receiving uploads. Each function checks the bytes exactly
//! as loading the same file would, and `name` stands for the file in messages and origins.

use super::{DataError, ImageSet, LoadOptions, cifar, folder, idx, npy};

/// An IDX images file (N×H×W unsigned bytes), raw or gzip-compressed.
pub fn idx(bytes: &[u8], name: &str) -> Result<ImageSet, DataError> {
    idx::decode(bytes, name)
}

/// A `.npy` image array (N×H×W or N×C×H×W; uint8, float32 or float64 in [0, 1]).
pub fn npy(bytes: &[u8], name: &str) -> Result<ImageSet, DataError> {
    npy::decode(bytes.to_vec(), name)
}

/// One CIFAR-10 or CIFAR-100 binary batch; `name` picks the variant as a file name would
/// (`data_batch_1.bin`, `train.bin`, …), else the size and labels decide.
pub fn cifar(bytes: &[u8], name: &str) -> Result<ImageSet, DataError> {
    cifar::decode(bytes.to_vec(), name)
}

/// Image files (PNG, JPEG, BMP; the format is guessed from the bytes) as one set, as a folder
/// of them loads: one size for all unless `opts.resize`, gray or colour detected unless
/// `opts.channels`. Only `channels` and `resize` of `opts` are used.
pub fn images(images: &[(&str, &[u8])], opts: &LoadOptions) -> Result<ImageSet, DataError> {
    super::validate_options(opts)?;
    folder::decode_images(images, opts)
}
