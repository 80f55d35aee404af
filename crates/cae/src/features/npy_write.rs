//! Writing NumPy `.npy` files (format 1.0): float32 matrices of codes or patch stacks and int64
//! label vectors, readable by `numpy.load` and by this crate's own `.npy` loader.

/// Little-endian element types written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I64,
}

/// The bytes of a `.npy` file holding `values` (`shape` in C order).
fn npy_bytes(dtype: Dtype, shape: &[usize], payload: Vec<u8>) -> Vec<u8> {
    let descr = match dtype {
        Dtype::F32 => "<f4",
        Dtype::I64 => "<i8",
    };
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + payload.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(payload);
    out
}

/// A float32 array of `shape` (its product must equal `values.len()`).
pub fn f32_npy(values: &[f32], shape: &[usize]) -> Result<Vec<u8>, NpyShapeError> {
    check(values.len(), shape)?;
    let payload = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(npy_bytes(Dtype::F32, shape, payload))
}

/// An int64 vector.
pub fn i64_npy(values: &[i64]) -> Vec<u8> {
    let payload = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes(Dtype::I64, &[values.len()], payload)
}

/// The values handed to [`f32_npy`] do not fill the shape asked for.
#[derive(Debug, thiserror::Error)]
#[error("array of {len} values does not have shape {shape:?} ({expected} values)")]
pub struct NpyShapeError {
    pub len: usize,
    pub shape: Vec<usize>,
    pub expected: usize,
}

fn check(len: usize, shape: &[usize]) -> Result<(), NpyShapeError> {
    let expected: usize = shape.iter().product();
    if expected != len {
        return Err(NpyShapeError {
            len,
            shape: shape.to_vec(),
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LoadOptions, load};

    #[test]
    fn headers_are_aligned_and_readable_by_our_loader() {
        let bytes = f32_npy(&[0.0, 0.5, 1.0, 0.25, 0.75, 0.125], &[1, 1, 2, 3]).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert!(
            std::str::from_utf8(&bytes[10..10 + header_len])
                .unwrap()
                .starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2, 3), }")
        );
        let dir = std::env::temp_dir().join(format!("cae-npy-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(dir.join("x_labels.npy"), i64_npy(&[7])).unwrap();
        let set = load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(set.shape.to_string(), "1x2x3");
        assert_eq!(set.pixels, vec![0.0, 0.5, 1.0, 0.25, 0.75, 0.125]);
        assert_eq!(set.labels, Some(vec![7]));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(f32_npy(&[1.0], &[2, 2]).is_err());
        let labels = i64_npy(&[1, -2]);
        assert!(
            String::from_utf8_lossy(&labels).contains("'shape': (2,)"),
            "{labels:?}"
        );
    }
}
