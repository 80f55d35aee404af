//! `cae`: convolutional autoencoders — architecture specs, real data loaders, training with
//! resume, reconstruction and quality metrics. The library knows nothing of clap or HTTP; the
//! `cae` binary is a thin layer over it.

pub mod anomaly;
pub mod atomic;
pub mod data;
pub mod denoise;
pub mod device;
pub mod features;
pub mod imageops;
pub mod infer;
pub mod info;
pub mod interop;
pub mod kernels;
pub mod model;
pub mod noise;
pub mod output;
pub mod plot;
pub mod quality;
pub mod quote;
pub mod run;
pub mod spec;
pub mod speed;
pub mod suggest;
pub mod synthetic;
pub mod toml_error;
pub mod train;

/// The compute device type, re-exported so callers need not depend on Burn.
pub use burn::tensor::Device;
