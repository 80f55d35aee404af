//! `--device`: the compute backend, checked by clap, and the device it stands for.

use cae::device::DeviceKind;

/// `--device`: the compute backend, checked by clap (`cpu` is another name for flex).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// Burn's pure-Rust CPU backend.
    #[default]
    #[value(alias = "cpu")]
    Flex,
    /// Any GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA CUDA (cargo feature `cuda`).
    Cuda,
}

impl From<DeviceArg> for DeviceKind {
    fn from(d: DeviceArg) -> DeviceKind {
        match d {
            DeviceArg::Flex => DeviceKind::Flex,
            DeviceArg::Wgpu => DeviceKind::Wgpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
        }
    }
}

impl DeviceArg {
    /// The device, or the error that it is not compiled into this binary.
    pub fn device(self) -> anyhow::Result<cae::Device> {
        Ok(DeviceKind::from(self).device()?)
    }
}
