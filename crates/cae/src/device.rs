//! Picking the compute device at run time (`--device flex|wgpu|cuda`). GPU backends are cargo
//! features; asking for one that was not compiled in is a clear error, not a panic.

use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;

/// A backend the user can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Burn's pure-Rust CPU backend (always available).
    #[default]
    Flex,
    /// Any GPU through wgpu (Vulkan/Metal/DX12); cargo feature `wgpu`.
    Wgpu,
    /// NVIDIA CUDA; cargo feature `cuda` (needs network at build time).
    Cuda,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Flex => "flex",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        })
    }
}

impl FromStr for DeviceKind {
    type Err = crate::quote::InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(DeviceKind::Flex),
            "wgpu" => Ok(DeviceKind::Wgpu),
            "cuda" => Ok(DeviceKind::Cuda),
            other => Err(crate::quote::InvalidValue::new(
                "unknown device",
                other,
                "expected flex, wgpu or cuda",
            )),
        }
    }
}

/// A device this binary or this machine cannot run on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The backend was not compiled into this binary.
    #[error(
        "device '{0}' is not compiled into this binary: rebuild with `cargo build --release --features {0}`"
    )]
    NotCompiled(DeviceKind),
    /// The backend is compiled in, but the machine offers it no usable device.
    #[error("device '{kind}' is not usable on this machine: {reason}")]
    Unavailable { kind: DeviceKind, reason: String },
}

impl DeviceKind {
    /// The inference device; a GPU backend is tried once, so that a machine without a usable
    /// device is one error here rather than a panic inside the backend at the first operation.
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            DeviceKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => tried(self, Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => tried(self, Device::cuda(0usize)),
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotCompiled(other)),
        }
    }
}

/// `device` after one small operation on it: the GPU backends pick their adapter on first use
/// and panic when there is none (no Vulkan driver, no CUDA library). The panic is caught with
/// the default hook silenced, so the user gets its message as one error line.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn tried(kind: DeviceKind, device: Device) -> Result<Device, DeviceError> {
    use burn::tensor::{Tensor, TensorData};
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device)
            .sum()
            .into_scalar::<f32>()
    }));
    std::panic::set_hook(hook);
    match probe {
        Ok(_) => Ok(device),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the backend failed to start".into());
            let first = message.lines().next().unwrap_or_default();
            // The backend's own words are often an internal unwrap: what is missing comes first.
            let reason = match kind {
                DeviceKind::Cuda => format!(
                    "the CUDA backend could not start (it needs the NVIDIA driver and CUDA's NVRTC library); it said: {first}"
                ),
                _ => format!(
                    "wgpu found no Vulkan, Metal, DX12 or OpenGL adapter (on Debian, apt install mesa-vulkan-drivers libvulkan1 gives a software Vulkan one); it said: {first}"
                ),
            };
            Err(DeviceError::Unavailable { kind, reason })
        }
    }
}
