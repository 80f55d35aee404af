//! Fuzz target: `cae_fuzz::npy` (see `harness.rs`) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cae_fuzz::npy(data));
