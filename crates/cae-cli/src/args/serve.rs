//! The flags of `cae serve`: the run, where to listen, and the server's limits.

use cae_serve::{BatchOptions, Limits};
use clap::Args;
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The run (with RUN/threshold.json for labels) and --device, as every command that runs a
    /// model takes them.
    #[command(flatten)]
    pub run: super::RunArgs,
    /// Address to listen on; port 0 picks a free port (printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Largest request body in bytes (one image, or a whole multipart body).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body: usize,
    /// Longest image side, in pixels, an image header may declare.
    #[arg(long, value_name = "PX", default_value_t = Limits::default().max_side)]
    pub max_side: u32,
    /// Most pixels (width × height) an image header may declare.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_pixels)]
    pub max_pixels: u64,
    /// Most images in one multipart request.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_images)]
    pub max_images: usize,
    /// Request timeout in seconds (upload and queueing included); then 504.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().timeout.as_secs_f64())]
    pub timeout: f64,
    /// Most requests in progress at once on /v1/...; more get 503 at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrency)]
    pub max_concurrency: usize,
    /// Seconds a client has to send a whole request head (an idle keep-alive connection, to
    /// start the next one); then the connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().header_timeout.as_secs_f64())]
    pub header_timeout: f64,
    /// Most open connections (lowered to what the descriptor limit allows); when all are
    /// taken, the one idle longest is closed to make room.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds SIGTERM waits for requests in progress before exiting anyway (0: at once).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().drain_timeout.as_secs_f64())]
    pub drain_timeout: f64,
    /// MiB that decoding request images may take at once, shared by all requests (each image
    /// reserves its worst case from its header; one over the whole budget gets 413).
    #[arg(long, value_name = "MIB", default_value_t = Limits::default().decode_memory >> 20)]
    pub decode_memory: u64,
    /// Most images in one model call.
    #[arg(long, value_name = "N", default_value_t = BatchOptions::default().max_batch)]
    pub max_batch: usize,
    /// Longest the first image of a batch waits for others, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = BatchOptions::default().max_wait.as_secs_f64() * 1e3)]
    pub max_wait_ms: f64,
    /// Most images waiting for the model; more get 503.
    #[arg(long, value_name = "N", default_value_t = BatchOptions::default().queue)]
    pub queue: usize,
    #[command(flatten)]
    pub score: super::anomaly::ScoreChoice,
}
