//! State dicts on disk: PyTorch's `{name: tensor}` maps, as `.safetensors` (read and written,
//! with string metadata) and as `torch.save` checkpoints (`.pt`/`.pth`, read with burn-store's
//! PyTorch reader — no pickle parser of our own). Floats of any width are held as f32, integers
//! as i64. The format is told from the bytes, not the file name.

use super::InteropError;
use burn::store::pytorch_reader::{self, PytorchReader};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

/// Tensor values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One named tensor of a state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct StateTensor {
    pub shape: Vec<usize>,
    pub values: Values,
    /// The dtype in the file (`F32`, `F16`, `I64`, ...), for messages.
    pub dtype: String,
}

impl StateTensor {
    /// A float32 tensor.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> StateTensor {
        StateTensor {
            shape,
            values: Values::F32(values),
            dtype: "F32".into(),
        }
    }
}

/// A state dict: tensors by name, plus the file's string metadata (safetensors only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    pub tensors: BTreeMap<String, StateTensor>,
    pub metadata: BTreeMap<String, String>,
}

/// The file formats a state dict is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Safetensors,
    /// `torch.save` output: a ZIP archive (PyTorch ≥ 1.6) or a legacy pickle stream.
    Pytorch,
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileFormat::Safetensors => "safetensors",
            FileFormat::Pytorch => "pytorch",
        })
    }
}

/// A `.pt` tensor may not claim more bytes than this many times the file's size (views of an
/// expanded storage can declare any size; real state dicts hold each tensor's bytes once).
const PT_EXPANSION_LIMIT: u64 = 4;

impl StateDict {
    /// Reads a `.safetensors` file or a PyTorch checkpoint.
    pub fn read(path: &Path) -> Result<(StateDict, FileFormat), InteropError> {
        let shown = path.display().to_string();
        let io = |source| InteropError::Read {
            path: shown.clone(),
            source,
        };
        let mut head = [0u8; 4];
        let got = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(io)?;
        if got == 0 {
            return Err(InteropError::Corrupt {
                path: shown,
                format: "state dict",
                message: "the file is empty".into(),
            });
        }
        // ZIP (torch.save since 1.6) or a pickle stream (protocol ≥ 2 starts with 0x80).
        if head.starts_with(b"PK\x03\x04") || head[0] == 0x80 {
            return Ok((Self::read_pytorch(path)?, FileFormat::Pytorch));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Ok((
            Self::from_safetensors(&bytes, &shown)?,
            FileFormat::Safetensors,
        ))
    }

    /// Parses safetensors bytes; `origin` names them in errors.
    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<StateDict, InteropError> {
        let corrupt = |message: String| InteropError::Corrupt {
            path: origin.to_string(),
            format: "safetensors file (nor a PyTorch checkpoint)",
            message,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.iter() {
            let values = safetensors_values(&view).ok_or_else(|| InteropError::Dtype {
                origin: origin.to_string(),
                key: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            tensors.insert(
                name.to_string(),
                StateTensor {
                    shape: view.shape().to_vec(),
                    values,
                    dtype: format!("{:?}", view.dtype()),
                },
            );
        }
        let metadata = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(StateDict { tensors, metadata })
    }

    /// The state dict as safetensors bytes (floats as F32, integers as I64).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, InteropError> {
        let fail = |e: safetensors::SafeTensorError| InteropError::Tensor(e.to_string());
        let buffers: Vec<(&String, Dtype, &Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let (dtype, bytes) = match &t.values {
                    Values::F32(v) => {
                        (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    }
                    Values::I64(v) => {
                        (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    }
                };
                (name, dtype, &t.shape, bytes)
            })
            .collect();
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.to_vec(), bytes).map(|v| (name.as_str(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let metadata: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        safetensors::serialize(views, Some(metadata)).map_err(fail)
    }

    /// Reads a `torch.save` checkpoint (a state dict, a dict holding one, or a whole module).
    fn read_pytorch(path: &Path) -> Result<StateDict, InteropError> {
        let shown = path.display().to_string();
        let corrupt = |message: String| InteropError::Corrupt {
            path: shown.clone(),
            format: "PyTorch checkpoint",
            message,
        };
        let file_len = std::fs::metadata(path)
            .map_err(|source| InteropError::Read {
                path: shown.clone(),
                source,
            })?
            .len();
        let reader = PytorchReader::new(path).map_err(|e| corrupt(e.to_string()))?;
        if reader.is_empty() {
            return Err(corrupt("it holds no tensors".into()));
        }
        let mut declared = 0u64;
        let mut tensors = BTreeMap::new();
        for (name, t) in reader.into_tensors() {
            let bytes = t.byte_len() as u64;
            declared += bytes;
            if bytes > file_len || declared > PT_EXPANSION_LIMIT * file_len {
                return Err(corrupt(format!(
                    "tensor '{name}' {:?} declares {bytes} bytes, more than the {file_len}-byte file can hold",
                    t.shape()
                )));
            }
            let raw = t.read().map_err(|e| corrupt(e.to_string()))?;
            let dtype = t.dtype();
            let values = pytorch_values(dtype, &raw).ok_or_else(|| InteropError::Dtype {
                origin: shown.clone(),
                key: name.clone(),
                dtype: format!("{dtype:?}"),
            })?;
            tensors.insert(
                name,
                StateTensor {
                    shape: t.shape().to_vec(),
                    values,
                    dtype: format!("{dtype:?}"),
                },
            );
        }
        Ok(StateDict {
            tensors,
            metadata: BTreeMap::new(),
        })
    }
}

/// Little-endian safetensors data as f32 or i64; `None` for dtypes weights never use.
fn safetensors_values(view: &TensorView<'_>) -> Option<Values> {
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => Values::F32(chunks(data, f32::from_le_bytes)),
        Dtype::F64 => Values::F32(chunks(data, |b| f64::from_le_bytes(b) as f32)),
        Dtype::F16 => Values::F32(chunks(data, |b| half::f16::from_le_bytes(b).to_f32())),
        Dtype::BF16 => Values::F32(chunks(data, |b| half::bf16::from_le_bytes(b).to_f32())),
        Dtype::I64 => Values::I64(chunks(data, i64::from_le_bytes)),
        Dtype::I32 => Values::I64(chunks(data, |b| i32::from_le_bytes(b).into())),
        Dtype::I16 => Values::I64(chunks(data, |b| i16::from_le_bytes(b).into())),
        Dtype::I8 => Values::I64(chunks(data, |b: [u8; 1]| (b[0] as i8).into())),
        Dtype::U8 | Dtype::BOOL => Values::I64(chunks(data, |b: [u8; 1]| b[0].into())),
        _ => return None,
    })
}

/// Native-endian PyTorch data (the reader gathers views into row-major order).
fn pytorch_values(dtype: pytorch_reader::DType, data: &[u8]) -> Option<Values> {
    use pytorch_reader::DType as T;
    Some(match dtype {
        T::F32 => Values::F32(chunks(data, f32::from_ne_bytes)),
        T::F64 => Values::F32(chunks(data, |b| f64::from_ne_bytes(b) as f32)),
        T::F16 => Values::F32(chunks(data, |b| half::f16::from_ne_bytes(b).to_f32())),
        T::BF16 => Values::F32(chunks(data, |b| half::bf16::from_ne_bytes(b).to_f32())),
        T::I64 => Values::I64(chunks(data, i64::from_ne_bytes)),
        T::I32 => Values::I64(chunks(data, |b| i32::from_ne_bytes(b).into())),
        T::I16 => Values::I64(chunks(data, |b| i16::from_ne_bytes(b).into())),
        T::I8 => Values::I64(chunks(data, |b: [u8; 1]| (b[0] as i8).into())),
        T::U8 | T::Bool => Values::I64(chunks(data, |b: [u8; 1]| b[0].into())),
        T::U16 => Values::I64(chunks(data, |b| u16::from_ne_bytes(b).into())),
        T::U32 => Values::I64(chunks(data, |b| u32::from_ne_bytes(b).into())),
        T::U64 => return None,
    })
}

/// Decodes fixed-size elements.
fn chunks<const N: usize, T>(data: &[u8], decode: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            decode(b)
        })
        .collect()
}
