//! NumPy `.npy` files: N×H×W or N×C×H×W arrays of uint8, float32 or float64, plus an optional
//! sibling labels array (`<stem>_labels.npy` or `<stem>.labels.npy`).
//!
//! Owns the `.npy` header parser (a tiny reader for the Python dict literal NumPy writes),
//! dtype decoding and value checks: float data must be finite and within [0, 1], because a
//! silent rescale would hide a data-preparation mistake.

use std::path::{Path, PathBuf};

use super::{DataError, ImageSet, ImageShape, alloc_pixels, container_origins, read_file, show};

/// The six bytes every `.npy` file starts with.
pub(super) const MAGIC: &[u8] = b"\x93NUMPY";
const FORMAT: &str = "npy";
/// Float values this far outside [0, 1] are clamped; anything further is an error.
const TOLERANCE: f64 = 1e-3;
/// NumPy headers are a few hundred bytes; refuse absurd ones.
const MAX_HEADER: usize = 1 << 20;

/// Element types this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    /// Unsigned integer of 1, 2, 4 or 8 bytes (only 1 byte for images).
    Uint { size: usize, big: bool },
    /// Signed integer of 1, 2, 4 or 8 bytes (labels only).
    Int { size: usize, big: bool },
    /// IEEE float of 4 or 8 bytes.
    Float { size: usize, big: bool },
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::Uint { size, .. } | Dtype::Int { size, .. } | Dtype::Float { size, .. } => size,
        }
    }
}

/// A parsed `.npy` file: dtype, shape and the raw data bytes.
struct Array {
    descr: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Loads a `.npy` image array and, when present, its labels array.
pub(super) fn load(path: &Path) -> Result<ImageSet, DataError> {
    let mut set = decode(read_file(path)?, &show(path))?;
    if let Some(lp) = labels_path_for(path) {
        set.labels = Some(load_labels(&lp, path, set.len())?);
    }
    Ok(set)
}

/// Decodes the bytes of a `.npy` image array named `path` in messages and origins; no labels.
pub(super) fn decode(bytes: Vec<u8>, path: &str) -> Result<ImageSet, DataError> {
    let arr = parse_array(bytes, path)?;
    let unsupported = |detail: String| DataError::Unsupported {
        path: path.to_string(),
        format: FORMAT,
        detail,
    };
    let shape = match arr.shape[..] {
        [_, h, w] => ImageShape {
            channels: 1,
            height: h,
            width: w,
        },
        [_, c, h, w] => {
            if c > 4 && w <= 4 {
                return Err(unsupported(format!(
                    "shape {:?} looks channels-last (N×H×W×C); this loader wants N×C×H×W: \
                     save np.transpose(a, (0, 3, 1, 2)) instead",
                    arr.shape
                )));
            }
            ImageShape {
                channels: c,
                height: h,
                width: w,
            }
        }
        _ => {
            return Err(unsupported(format!(
                "shape {:?} has {} dimension(s); expected N×H×W or N×C×H×W",
                arr.shape,
                arr.shape.len()
            )));
        }
    };
    let n = arr.shape[0];
    let pixels = match arr.dtype {
        Dtype::Uint { size: 1, .. } => {
            let mut px = alloc_pixels(Some(arr.data.len()), path)?;
            px.extend(arr.data.iter().map(|&b| f32::from(b) / 255.0));
            px
        }
        Dtype::Float { size, big } => floats_to_pixels(path, &arr.data, size, big, shape)?,
        _ => {
            return Err(unsupported(format!(
                "dtype '{}' is not supported for images: save as uint8 (|u1, 0-255), float32 \
                 (<f4) or float64 (<f8, values in [0, 1])",
                arr.descr
            )));
        }
    };
    Ok(ImageSet {
        shape,
        pixels,
        labels: None,
        class_names: None,
        origins: container_origins(path, n),
    })
}

/// Decodes float data, rejecting NaN/Inf and values outside [0, 1] (beyond `TOLERANCE`).
fn floats_to_pixels(
    path: &str,
    data: &[u8],
    size: usize,
    big: bool,
    shape: ImageShape,
) -> Result<Vec<f32>, DataError> {
    let mut px = alloc_pixels(Some(data.len() / size), path)?;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (index, chunk) in data.chunks_exact(size).enumerate() {
        let v = decode_float(chunk, big);
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                path: path.to_string(),
                image: index / shape.len().max(1),
                index,
                value: v,
            });
        }
        min = min.min(v);
        max = max.max(v);
        px.push(v.clamp(0.0, 1.0) as f32);
    }
    if min < -TOLERANCE || max > 1.0 + TOLERANCE {
        return Err(DataError::OutOfRange {
            path: path.to_string(),
            min,
            max,
        });
    }
    Ok(px)
}

fn decode_float(chunk: &[u8], big: bool) -> f64 {
    match (chunk, big) {
        (&[a, b, c, d], false) => f64::from(f32::from_le_bytes([a, b, c, d])),
        (&[a, b, c, d], true) => f64::from(f32::from_be_bytes([a, b, c, d])),
        (&[a, b, c, d, e, f, g, h], false) => f64::from_le_bytes([a, b, c, d, e, f, g, h]),
        (&[a, b, c, d, e, f, g, h], true) => f64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => f64::NAN,
    }
}

/// `<stem>_labels.npy` or `<stem>.labels.npy` beside `path`, if one exists.
fn labels_path_for(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let dir = path.parent().unwrap_or(Path::new(""));
    [format!("{stem}_labels.npy"), format!("{stem}.labels.npy")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file() && p != path)
}

/// Reads a labels array: integers, shape (N,) or (N, 1), each in 0..=u32::MAX.
fn load_labels(labels_path: &Path, images_path: &Path, n: usize) -> Result<Vec<u32>, DataError> {
    let arr = parse_array(read_file(labels_path)?, &show(labels_path))?;
    let err = |detail: String| DataError::Unsupported {
        path: show(labels_path),
        format: FORMAT,
        detail,
    };
    let count = match arr.shape[..] {
        [m] | [m, 1] => m,
        _ => {
            return Err(err(format!(
                "labels must have shape (N,) but have {:?}",
                arr.shape
            )));
        }
    };
    if count != n {
        return Err(DataError::LabelCount {
            images_path: show(images_path),
            labels_path: show(labels_path),
            images: n,
            labels: count,
        });
    }
    let (size, big, signed) = match arr.dtype {
        Dtype::Uint { size, big } => (size, big, false),
        Dtype::Int { size, big } => (size, big, true),
        _ => {
            return Err(err(format!(
                "labels dtype '{}' is not an integer type; save labels as integers (e.g. |u1 or <i8)",
                arr.descr
            )));
        }
    };
    let mut labels = Vec::with_capacity(count);
    for (i, chunk) in arr.data.chunks_exact(size).enumerate() {
        let mut b = [0u8; 8];
        let fill = if signed && chunk[if big { 0 } else { size - 1 }] & 0x80 != 0 {
            0xff
        } else {
            0
        };
        b.fill(fill);
        if big {
            b[8 - size..].copy_from_slice(chunk);
        } else {
            b[..size].copy_from_slice(chunk);
        }
        let v = if big {
            i64::from_be_bytes(b)
        } else {
            i64::from_le_bytes(b)
        };
        let v = if signed { v as i128 } else { v as u64 as i128 };
        let label = u32::try_from(v).map_err(|_| {
            err(format!(
                "label {i} is {v}; labels must be non-negative integers"
            ))
        })?;
        labels.push(label);
    }
    Ok(labels)
}

/// Validates the bytes of a whole `.npy` file (header, shape, data length, memory order).
fn parse_array(bytes: Vec<u8>, path: &str) -> Result<Array, DataError> {
    let malformed = |detail: String| DataError::Malformed {
        path: path.to_string(),
        format: FORMAT,
        detail,
    };
    if !bytes.starts_with(MAGIC) {
        let got: Vec<String> = bytes.iter().take(6).map(|b| format!("{b:02x}")).collect();
        return Err(malformed(format!(
            "bad magic bytes [{}]: a .npy file starts with \\x93NUMPY",
            got.join(" ")
        )));
    }
    let truncated_header = || DataError::Truncated {
        path: path.to_string(),
        format: FORMAT,
        detail: format!("the file ends inside the header ({} bytes)", bytes.len()),
    };
    let (header_len, start) = match bytes.get(6..8) {
        Some(&[1, _]) => match bytes.get(8..10) {
            Some(&[a, b]) => (usize::from(u16::from_le_bytes([a, b])), 10),
            _ => return Err(truncated_header()),
        },
        Some(&[2 | 3, _]) => match bytes.get(8..12) {
            Some(&[a, b, c, d]) => (u32::from_le_bytes([a, b, c, d]) as usize, 12),
            _ => return Err(truncated_header()),
        },
        Some(&[major, minor]) => {
            return Err(DataError::Unsupported {
                path: path.to_string(),
                format: FORMAT,
                detail: format!(
                    "format version {major}.{minor}; versions 1.0 to 3.0 are supported"
                ),
            });
        }
        _ => return Err(truncated_header()),
    };
    if header_len > MAX_HEADER {
        return Err(malformed(format!(
            "header length {header_len} is implausibly large"
        )));
    }
    let text = bytes
        .get(start..start + header_len)
        .ok_or_else(truncated_header)?;
    let text =
        std::str::from_utf8(text).map_err(|_| malformed("the header is not text".to_string()))?;
    let header = header::parse(text).map_err(|e| malformed(format!("bad header: {e}")))?;
    if header.fortran_order {
        return Err(DataError::Unsupported {
            path: path.to_string(),
            format: FORMAT,
            detail: "array is in Fortran (column-major) order; save it in C order: \
                     np.save(path, np.ascontiguousarray(a))"
                .to_string(),
        });
    }
    let Some(dtype) = parse_dtype(&header.descr) else {
        return Err(DataError::Unsupported {
            path: path.to_string(),
            format: FORMAT,
            detail: format!(
                "dtype '{}' is not supported: use uint8 (|u1), float32 (<f4) or float64 (<f8) \
                 for images, integers for labels",
                header.descr
            ),
        });
    };
    let item = dtype.size();
    if header.shape.contains(&0) {
        return Err(malformed(format!("shape {:?} holds no data", header.shape)));
    }
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    let declared = count
        .and_then(|c| c.checked_mul(item))
        .ok_or_else(|| DataError::TooLarge {
            path: path.to_string(),
            detail: format!("shape {:?} overflows", header.shape),
        })?;
    let data_start = start + header_len;
    let actual = bytes.len() - data_start;
    if actual < declared {
        return Err(DataError::Truncated {
            path: path.to_string(),
            format: FORMAT,
            detail: format!(
                "header declares shape {:?} of '{}' ({declared} bytes) but only {actual} bytes follow",
                header.shape, header.descr
            ),
        });
    }
    if actual > declared {
        return Err(malformed(format!(
            "header declares shape {:?} of '{}' ({declared} bytes) but {actual} bytes follow",
            header.shape, header.descr
        )));
    }
    let mut data = bytes;
    data.drain(..data_start);
    Ok(Array {
        descr: header.descr,
        dtype,
        shape: header.shape,
        data,
    })
}

/// Decodes a descr like `<f8`, `|u1`, `>i4`; None for anything else (complex, strings, ...).
fn parse_dtype(descr: &str) -> Option<Dtype> {
    let (big, rest) = match descr.as_bytes().first()? {
        b'<' => (false, &descr[1..]),
        b'>' => (true, &descr[1..]),
        b'|' | b'=' => (cfg!(target_endian = "big"), &descr[1..]),
        _ => (cfg!(target_endian = "big"), descr),
    };
    let (kind, size) = rest.split_at_checked(1)?;
    let size: usize = size.parse().ok()?;
    match (kind, size) {
        ("u", 1 | 2 | 4 | 8) => Some(Dtype::Uint { size, big }),
        ("i", 1 | 2 | 4 | 8) => Some(Dtype::Int { size, big }),
        ("f", 4 | 8) => Some(Dtype::Float { size, big }),
        _ => None,
    }
}

mod header;

#[cfg(test)]
mod tests;
