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

/// A device kind this binary cannot run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "device '{0}' is not compiled into this binary: rebuild with `cargo build --release --features {0}`"
)]
pub struct NotCompiled(pub DeviceKind);

impl DeviceKind {
    /// The inference device.
    pub fn device(self) -> Result<Device, NotCompiled> {
        match self {
            DeviceKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => Ok(Device::cuda(0usize)),
            #[allow(unreachable_patterns)]
            other => Err(NotCompiled(other)),
        }
    }
}
