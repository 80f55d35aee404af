//! End-to-end tests of the `cae` binary, compiled into one test binary. Helpers live in
//! `util.rs`; each file covers one command or concern. Tests that train use the committed
//! MNIST fixture (500 real digits), so they pass without `../shared`.

mod util;

mod anomaly;
mod arch;
mod bad_corpus;
mod bad_input;
mod crash;
mod denoise;
mod features;
mod info;
mod interop;
mod messages;
mod outputs;
mod resume;
mod run_lock;
mod serve;
mod serve_hostile;
mod stream;
mod train;
#[cfg(feature = "wgpu")]
mod wgpu;
