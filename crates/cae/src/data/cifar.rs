//! CIFAR-10 and CIFAR-100 binary batches (`data_batch_*.bin`, `test_batch.bin`, `train.bin`,
//! `test.bin`) and folders holding them.
//!
//! Owns record-size detection (CIFAR-10 records are 1 label byte + 3072 pixel bytes; CIFAR-100
//! records carry 2 label bytes, coarse then fine, and the fine label is used), label checks and
//! class names from `batches.meta.txt` / `fine_label_names.txt` beside the batches.

use std::fs;
use std::path::{Path, PathBuf};

use super::{DataError, ImageSet, ImageShape, alloc_pixels, io_error, read_file, show};

const FORMAT: &str = "CIFAR";
/// Pixel bytes per record: 1024 red, 1024 green, 1024 blue, each 32×32 row-major.
const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR layout a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// 1 label byte (0–9) per record.
    Ten,
    /// 2 label bytes (coarse 0–19, fine 0–99) per record.
    Hundred,
}

impl Variant {
    fn label_bytes(self) -> usize {
        match self {
            Variant::Ten => 1,
            Variant::Hundred => 2,
        }
    }
    fn record(self) -> usize {
        self.label_bytes() + PIXELS
    }
    fn name(self) -> &'static str {
        match self {
            Variant::Ten => "CIFAR-10",
            Variant::Hundred => "CIFAR-100",
        }
    }
    /// True when every record's labels are in range for this variant.
    fn labels_valid(self, bytes: &[u8]) -> bool {
        bytes.chunks_exact(self.record()).all(|r| match self {
            Variant::Ten => r[0] < 10,
            Variant::Hundred => r[0] < 20 && r[1] < 100,
        })
    }
    fn names_file(self) -> &'static str {
        match self {
            Variant::Ten => "batches.meta.txt",
            Variant::Hundred => "fine_label_names.txt",
        }
    }
}

/// The batch files to load when `dir` is a CIFAR folder, or None when it is not one:
/// all `data_batch_*.bin` (else `test_batch.bin`) for CIFAR-10, `train.bin` (else `test.bin`)
/// for CIFAR-100. Test batches are only used when no training batch is present; point at
/// `test_batch.bin` / `test.bin` directly to load them.
pub(super) fn folder_batches(dir: &Path) -> Result<Option<Vec<PathBuf>>, DataError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if let Some(name) = entry.file_name().to_str()
            && entry.path().is_file()
        {
            names.push(name.to_string());
        }
    }
    let mut batches: Vec<(u64, String)> = names
        .iter()
        .filter_map(|n| {
            let num = n.strip_prefix("data_batch_")?.strip_suffix(".bin")?;
            Some((num.parse().unwrap_or(u64::MAX), n.clone()))
        })
        .collect();
    batches.sort();
    let mut files: Vec<PathBuf> = batches.into_iter().map(|(_, n)| dir.join(n)).collect();
    if files.is_empty() {
        let has = |n: &str| names.iter().any(|m| m == n);
        if let Some(n) = ["test_batch.bin", "train.bin", "test.bin"]
            .into_iter()
            .find(|n| has(n))
        {
            files.push(dir.join(n));
        }
    }
    Ok((!files.is_empty()).then_some(files))
}

/// Loads one or more batch files into one set, in the given order.
pub(super) fn load_files(files: &[PathBuf]) -> Result<ImageSet, DataError> {
    let mut batches = Vec::with_capacity(files.len());
    for path in files {
        let bytes = read_file(path)?;
        batches.push((show(path), bytes));
    }
    let mut set = decode_batches(&batches)?;
    if let Some(path) = files.first()
        && let Some(labels) = &set.labels
    {
        set.class_names = class_names(path, detect(&batches[0].0, &batches[0].1)?, labels)?;
    }
    Ok(set)
}

/// Decodes the bytes of one batch file; `name` (a file name or path) picks the variant as a
/// file name would and names the batch in messages and origins. No class names.
pub(super) fn decode(bytes: Vec<u8>, name: &str) -> Result<ImageSet, DataError> {
    decode_batches(&[(name.to_string(), bytes)])
}

/// Decodes `(name, bytes)` batches into one set, in order.
fn decode_batches(batches: &[(String, Vec<u8>)]) -> Result<ImageSet, DataError> {
    let mut variants = Vec::with_capacity(batches.len());
    for (name, bytes) in batches {
        variants.push(detect(name, bytes)?);
    }
    let total: usize = batches
        .iter()
        .zip(&variants)
        .map(|((_, b), v)| b.len() / v.record())
        .sum();
    let first = batches.first().map_or("", |(n, _)| n.as_str());
    let mut pixels = alloc_pixels(total.checked_mul(PIXELS), first)?;
    let mut labels = Vec::with_capacity(total);
    let mut origins = Vec::with_capacity(total);
    for ((shown, bytes), variant) in batches.iter().zip(&variants) {
        for (i, rec) in bytes.chunks_exact(variant.record()).enumerate() {
            // CIFAR-100: [coarse, fine, pixels...]; the fine label is the class.
            labels.push(u32::from(rec[variant.label_bytes() - 1]));
            pixels.extend(
                rec[variant.label_bytes()..]
                    .iter()
                    .map(|&b| f32::from(b) / 255.0),
            );
            origins.push(format!("{shown}#{i}"));
        }
    }
    Ok(ImageSet {
        shape: ImageShape {
            channels: 3,
            height: 32,
            width: 32,
        },
        pixels,
        labels: Some(labels),
        class_names: None,
        origins,
    })
}

/// Chooses CIFAR-10 or CIFAR-100 from the file name, else from the size and label ranges,
/// and checks the size is a whole number of records and the labels are in range.
fn detect(path: &str, bytes: &[u8]) -> Result<Variant, DataError> {
    let malformed = |detail: String| DataError::Malformed {
        path: path.to_string(),
        format: FORMAT,
        detail,
    };
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let by_name = if name.starts_with("data_batch") || name == "test_batch.bin" {
        Some(Variant::Ten)
    } else if name == "train.bin" || name == "test.bin" {
        Some(Variant::Hundred)
    } else {
        None
    };
    if bytes.is_empty() {
        return Err(malformed("the file is empty".to_string()));
    }
    let fits = |v: Variant| bytes.len().is_multiple_of(v.record());
    let variant = match by_name {
        Some(v) if fits(v) => v,
        Some(v) => {
            return Err(malformed(format!(
                "size {} bytes is not a multiple of the {} record size ({} bytes = {} label \
                 byte(s) + 3072 pixel bytes); the file may be truncated",
                bytes.len(),
                v.name(),
                v.record(),
                v.label_bytes()
            )));
        }
        None => match (fits(Variant::Ten), fits(Variant::Hundred)) {
            (true, false) => Variant::Ten,
            (false, true) => Variant::Hundred,
            (true, true) if Variant::Ten.labels_valid(bytes) => Variant::Ten,
            (true, true) => Variant::Hundred,
            (false, false) => {
                return Err(malformed(format!(
                    "size {} bytes is not a multiple of the CIFAR-10 record size (3073 bytes = \
                     1 label byte + 3072 pixel bytes) nor of the CIFAR-100 record size (3074 \
                     bytes); the file may be truncated or not a CIFAR batch",
                    bytes.len()
                )));
            }
        },
    };
    if let Some((i, rec)) = bytes
        .chunks_exact(variant.record())
        .enumerate()
        .find(|(_, r)| !variant.labels_valid(r))
    {
        let range = match variant {
            Variant::Ten => "a label 0-9".to_string(),
            Variant::Hundred => "coarse 0-19 and fine 0-99 labels".to_string(),
        };
        return Err(malformed(format!(
            "record {i} has label byte(s) {:?} but a {} record holds {range}",
            &rec[..variant.label_bytes()],
            variant.name()
        )));
    }
    Ok(variant)
}

/// Class names from the names file beside `path`; None when there is no such file or it
/// names fewer classes than the labels use (the labels are still loaded).
fn class_names(
    path: &Path,
    variant: Variant,
    labels: &[u32],
) -> Result<Option<Vec<String>>, DataError> {
    let file = path
        .parent()
        .unwrap_or(Path::new(""))
        .join(variant.names_file());
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&file, e)),
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let max = labels.iter().copied().max().unwrap_or(0) as usize;
    Ok((names.len() > max).then_some(names))
}

#[cfg(test)]
mod tests;
