//! What `cae serve` can be told: the run, the address, the request limits and the batching,
//! with the defaults in one place. [`ServeOptions::check`] runs before anything is loaded.

use crate::batcher::BatchOptions;
use crate::error::ServeError;
use cae::Device;
use cae::anomaly::ScoreKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What one request may ask of the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body (a raw image, or a whole multipart body), in bytes.
    pub max_body_bytes: usize,
    /// Longest image side an image header may declare, in pixels.
    pub max_side: u32,
    /// Most pixels (width × height) an image header may declare.
    pub max_pixels: u64,
    /// Most images in one multipart request.
    pub max_images: usize,
    /// Longest a request may take, body upload and queueing included; then 504.
    pub timeout: Duration,
    /// Most requests handled at once on the `/v1/...` endpoints; more get 503 at once.
    pub max_concurrency: usize,
    /// Longest a client may take to send a whole request head (and longest an idle keep-alive
    /// connection waits for the next one); then the connection is closed.
    pub header_timeout: Duration,
    /// Most open connections. Kept under the descriptor limit, and when all are taken the
    /// connection idle longest (half-sent head, idle keep-alive) is closed to make room, so a
    /// flood of slow clients cannot lock out `/healthz` or real requests.
    pub max_connections: usize,
    /// How long SIGTERM waits for open requests before the server exits anyway.
    pub drain_timeout: Duration,
    /// Bytes that decoding request images may hold at once, shared by all requests: each image
    /// waits until its worst-case decode size (from its header) fits, so concurrent
    /// decompression bombs queue instead of adding up.
    pub decode_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_side: 4096,
            max_pixels: 4096 * 4096,
            max_images: 64,
            timeout: Duration::from_secs(30),
            max_concurrency: 256,
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(10),
            decode_memory: 1 << 30,
        }
    }
}

impl Limits {
    /// Checks every limit is usable.
    pub fn check(&self) -> Result<(), ServeError> {
        let bad = |m: String| Err(ServeError::Option(m));
        if self.max_body_bytes < 64 {
            return bad(format!(
                "--max-body {}: must be at least 64 bytes",
                self.max_body_bytes
            ));
        }
        if self.max_side == 0 || self.max_pixels == 0 {
            return bad("--max-side and --max-pixels must be at least 1".into());
        }
        if self.max_images == 0 {
            return bad("--max-images must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be above 0 seconds".into());
        }
        if self.max_concurrency == 0 {
            return bad("--max-concurrency must be at least 1".into());
        }
        if self.header_timeout.is_zero() {
            return bad("--header-timeout must be above 0 seconds".into());
        }
        if self.max_connections == 0 {
            return bad("--max-connections must be at least 1".into());
        }
        if self.decode_memory < 1 << 20 {
            return bad(format!(
                "--decode-memory {} bytes: must be at least 1 MiB",
                self.decode_memory
            ));
        }
        Ok(())
    }
}

/// Everything the server starts from.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    /// Where to listen (port 0: any free port; the bound address is reported).
    pub addr: SocketAddr,
    pub limits: Limits,
    pub batch: BatchOptions,
    /// The score to report; default the fitted threshold's, else mse. Must match the
    /// threshold's when there is one.
    pub score: Option<ScoreKind>,
    /// Where the model runs.
    pub device: Device,
}

impl ServeOptions {
    /// Defaults for `run`: loopback port 8080, default limits and batching, the flex device.
    pub fn new(run: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            run: run.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            batch: BatchOptions::default(),
            score: None,
            device: Device::flex(),
        }
    }

    /// Checks the limits and the batching.
    pub fn check(&self) -> Result<(), ServeError> {
        self.limits.check()?;
        Ok(self.batch.check()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_zero_limit_is_refused() {
        assert!(ServeOptions::new("run").check().is_ok());
        let zeroed: [fn(&mut Limits); 8] = [
            |l| l.max_body_bytes = 0,
            |l| l.max_side = 0,
            |l| l.max_images = 0,
            |l| l.timeout = Duration::ZERO,
            |l| l.max_concurrency = 0,
            |l| l.header_timeout = Duration::ZERO,
            |l| l.max_connections = 0,
            |l| l.decode_memory = 0,
        ];
        for zero in zeroed {
            let mut l = Limits::default();
            zero(&mut l);
            let e = l.check().unwrap_err().to_string();
            assert!(
                ["--max", "--timeout", "--header-timeout", "--decode-memory"]
                    .iter()
                    .any(|flag| e.starts_with(flag)),
                "{e}"
            );
        }
    }
}
