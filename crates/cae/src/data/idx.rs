//! IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed, and the labels file
//! that sits beside an images file.
//!
//! Owns header validation: the declared size is checked against the bytes actually present
//! (and, for gzip, against what the compressed size can possibly expand to) before anything
//! is allocated, so a lying header or a gzip bomb cannot exhaust memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{DataError, ImageSet, ImageShape, alloc_pixels, container_origins, read_file, show};

/// First two bytes of every gzip stream.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const FORMAT: &str = "IDX";
/// Deflate cannot expand data by more than about 1032:1; anything beyond this is a lie.
const MAX_GZIP_RATIO: u64 = 1100;

/// True when `head` starts like an uncompressed IDX file (0x00 0x00, a type byte, ndim 1–4).
pub(super) fn looks_like_idx(head: &[u8]) -> bool {
    head.len() >= 4
        && head[0] == 0
        && head[1] == 0
        && matches!(head[2], 0x08 | 0x09 | 0x0B | 0x0C | 0x0D | 0x0E)
        && (1..=4).contains(&head[3])
}

/// Loads an IDX images file (N×H×W, u8) and, when present, its labels file.
pub(super) fn load(path: &Path) -> Result<ImageSet, DataError> {
    let mut set = decode(&read_file(path)?, &show(path))?;
    if let Some(lp) = labels_path_for(path) {
        set.labels = Some(load_labels(&lp, path, set.len())?);
    }
    Ok(set)
}

/// Decodes the bytes of an IDX images file (N×H×W, u8; raw or gzip) named `name` in messages
/// and origins; no labels.
pub(super) fn decode(bytes: &[u8], name: &str) -> Result<ImageSet, DataError> {
    let (dims, data) = parse(bytes, name)?;
    let [n, height, width] = dims[..] else {
        let detail = if dims.len() == 1 {
            "this is a 1-dimensional (labels) IDX file; pass the images file \
             (e.g. ...-images-idx3-ubyte.gz) instead"
                .to_string()
        } else {
            format!(
                "expected 3 dimensions (images × rows × columns) but the header has {}: {dims:?}",
                dims.len()
            )
        };
        return Err(DataError::Unsupported {
            path: name.to_string(),
            format: FORMAT,
            detail,
        });
    };
    let mut pixels = alloc_pixels(Some(data.len()), name)?;
    pixels.extend(data.iter().map(|&b| f32::from(b) / 255.0));
    drop(data);
    Ok(ImageSet {
        shape: ImageShape {
            channels: 1,
            height,
            width,
        },
        pixels,
        labels: None,
        class_names: None,
        origins: container_origins(name, n),
    })
}

/// Reads a labels file and checks it has one label per image.
fn load_labels(labels_path: &Path, images_path: &Path, n: usize) -> Result<Vec<u32>, DataError> {
    let (dims, data) = parse(&read_file(labels_path)?, &show(labels_path))?;
    if dims.len() != 1 {
        return Err(DataError::Malformed {
            path: show(labels_path),
            format: FORMAT,
            detail: format!(
                "expected a 1-dimensional labels file (magic 0x00000801) but the header has \
                 dimensions {dims:?}"
            ),
        });
    }
    if data.len() != n {
        return Err(DataError::LabelCount {
            images_path: show(images_path),
            labels_path: show(labels_path),
            images: n,
            labels: data.len(),
        });
    }
    Ok(data.into_iter().map(u32::from).collect())
}

/// The labels file beside an images file, if one exists: same name with `images`→`labels`
/// and `idx3`→`idx1`, gzipped or not.
fn labels_path_for(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let base = name.strip_suffix(".gz").unwrap_or(name);
    let derived = base.replace("images", "labels").replace("idx3", "idx1");
    if derived == base {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    [format!("{derived}.gz"), derived]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Parses an IDX file of unsigned bytes: its dimensions and exactly the data they declare.
fn parse(bytes: &[u8], path: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut dec = MultiGzDecoder::new(bytes);
        let dims = read_header(&mut dec, path)?;
        let declared = declared_len(&dims, path)?;
        let cap = (bytes.len() as u64)
            .saturating_mul(MAX_GZIP_RATIO)
            .saturating_add(4096);
        if declared > cap {
            return Err(truncated(
                path,
                &dims,
                declared,
                &format!(
                    "a {}-byte gzip file cannot hold more than about {cap} bytes",
                    bytes.len()
                ),
            ));
        }
        let mut data = Vec::new();
        (&mut dec)
            .take(declared + 1)
            .read_to_end(&mut data)
            .map_err(|e| gzip_error(path, e))?;
        check_len(
            path,
            &dims,
            declared,
            data.len() as u64,
            " (after decompression)",
        )?;
        Ok((dims, data))
    } else {
        let mut rest = bytes;
        let dims = read_header(&mut rest, path)?;
        let declared = declared_len(&dims, path)?;
        check_len(path, &dims, declared, rest.len() as u64, "")?;
        Ok((dims, rest.to_vec()))
    }
}

/// Parses magic and dimensions; the reader is left at the first data byte.
fn read_header(r: &mut impl Read, path: &str) -> Result<Vec<usize>, DataError> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic, path, "the 4-byte magic number")?;
    let code = u32::from_be_bytes(magic);
    let malformed = |detail: String| DataError::Malformed {
        path: path.to_string(),
        format: FORMAT,
        detail,
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(malformed(format!(
            "bad magic number 0x{code:08x}: expected 0x00000803 (images) or 0x00000801 (labels)"
        )));
    }
    let type_name = match magic[2] {
        0x08 => None,
        0x09 => Some("signed byte"),
        0x0B => Some("16-bit integer"),
        0x0C => Some("32-bit integer"),
        0x0D => Some("32-bit float"),
        0x0E => Some("64-bit float"),
        t => {
            return Err(malformed(format!(
                "bad magic number 0x{code:08x}: unknown element type 0x{t:02x}"
            )));
        }
    };
    if let Some(t) = type_name {
        return Err(DataError::Unsupported {
            path: path.to_string(),
            format: FORMAT,
            detail: format!(
                "element type is {t} (magic 0x{code:08x}); only unsigned-byte IDX files \
                 (0x08, e.g. 0x00000803) are supported"
            ),
        });
    }
    let ndim = usize::from(magic[3]);
    if !(1..=4).contains(&ndim) {
        return Err(malformed(format!(
            "bad magic number 0x{code:08x}: {ndim} dimensions (expected 1 to 4)"
        )));
    }
    let mut raw = [0u8; 16];
    read_exact(r, &mut raw[..4 * ndim], path, "the dimension sizes")?;
    Ok(raw[..4 * ndim]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// Product of the dimensions, rejecting zero and overflow.
fn declared_len(dims: &[usize], path: &str) -> Result<u64, DataError> {
    if dims.contains(&0) {
        return Err(DataError::Malformed {
            path: path.to_string(),
            format: FORMAT,
            detail: format!("header declares {}: the file holds no data", what(dims)),
        });
    }
    // Each dimension is < 2^32 and there are at most 4: fits in u128, then check u64.
    let total: u128 = dims.iter().map(|&d| d as u128).product();
    u64::try_from(total)
        .ok()
        .filter(|&t| usize::try_from(t).is_ok())
        .ok_or_else(|| DataError::TooLarge {
            path: path.to_string(),
            detail: format!("header declares {} ({total} bytes)", what(dims)),
        })
}

fn check_len(
    path: &str,
    dims: &[usize],
    declared: u64,
    actual: u64,
    note: &str,
) -> Result<(), DataError> {
    if actual < declared {
        return Err(truncated(
            path,
            dims,
            declared,
            &format!("only {actual} bytes follow{note}"),
        ));
    }
    if actual > declared {
        return Err(DataError::Malformed {
            path: path.to_string(),
            format: FORMAT,
            detail: format!(
                "header declares {} ({declared} bytes) but more data follows{note}; \
                 the header or the file is wrong",
                what(dims)
            ),
        });
    }
    Ok(())
}

fn truncated(path: &str, dims: &[usize], declared: u64, tail: &str) -> DataError {
    DataError::Truncated {
        path: path.to_string(),
        format: FORMAT,
        detail: format!(
            "header declares {} ({declared} bytes) but {tail}",
            what(dims)
        ),
    }
}

/// Human description of declared dimensions, e.g. "4000 images of 28x28".
fn what(dims: &[usize]) -> String {
    match dims {
        [n] => format!("{n} labels"),
        [n, h, w] => format!("{n} images of {h}x{w}"),
        _ => format!("dimensions {dims:?}"),
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &str, what: &str) -> Result<(), DataError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DataError::Truncated {
            path: path.to_string(),
            format: FORMAT,
            detail: format!("the file ends inside the header ({what})"),
        },
        _ => gzip_error(path, e),
    })
}

fn gzip_error(path: &str, e: std::io::Error) -> DataError {
    let detail = super::error::one_line(&e);
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DataError::Truncated {
            path: path.to_string(),
            format: FORMAT,
            detail: format!("the gzip stream ends early ({detail}); download the file again"),
        },
        _ => DataError::Malformed {
            path: path.to_string(),
            format: FORMAT,
            detail: format!("corrupt gzip data: {detail}"),
        },
    }
}

#[cfg(test)]
mod tests;
