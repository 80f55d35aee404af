//! `cae-load`: a load generator for `cae serve`. N clients, each on its own keep-alive HTTP/1.1
//! connection over loopback, post real images (cut from an IDX file, a `.npy`, a folder …, and
//! encoded as PNG) back to back for a bounded time; then it reports requests/s, latency
//! percentiles, errors by kind, and the server's peak resident memory (`VmHWM` of
//! `/proc/PID/status` for `--server-pid`).
//!
//! It runs on one thread, so on a small machine it takes as little CPU from the server as it
//! can; the numbers are still those of a server sharing its cores with its clients.

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "cae-load",
    about = "Concurrent clients against `cae serve`, with latency percentiles."
)]
struct Args {
    /// The endpoint to post to.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1/score")]
    url: String,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Images to post: IDX file, .npy, CIFAR .bin, image folder or builtin:shapes.
    #[arg(long, value_name = "SRC")]
    images: String,
    /// Use the first N images of SRC.
    #[arg(long, default_value_t = 512)]
    limit: usize,
    /// Resize images to HxW before encoding (for runs that take another size).
    #[arg(long, value_name = "HxW")]
    resize: Option<String>,
    /// Pid of the server, for its peak memory.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    /// Latency of every answered request, in microseconds (errors included).
    latencies_us: Vec<u64>,
    ok: u64,
    /// Error kind (`HTTP 503`, `connect`, `send`, …) → count.
    errors: BTreeMap<String, u64>,
    /// The first error body seen, for the report.
    first_error: Option<String>,
}

impl ClientLog {
    fn error(&mut self, kind: String, detail: String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_error.get_or_insert(detail);
    }
}

/// The images of `args.images` as PNG files in memory.
fn pngs(args: &Args) -> anyhow::Result<Vec<Bytes>> {
    let resize = args
        .resize
        .as_deref()
        .map(cae::run::config::parse_hw)
        .transpose()?;
    let options = cae::data::LoadOptions {
        limit: Some(args.limit.max(1)),
        resize,
        ..Default::default()
    };
    let set = cae::data::load(&args.images, &options).map_err(anyhow::Error::msg)?;
    let s = set.shape;
    let (w, h) = (s.width as u32, s.height as u32);
    let plane = s.height * s.width;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    (0..set.len())
        .map(|i| {
            let img = set.image(i);
            let picture: image::DynamicImage = if s.channels == 1 {
                image::GrayImage::from_fn(w, h, |x, y| {
                    image::Luma([byte(img[y as usize * s.width + x as usize])])
                })
                .into()
            } else {
                image::RgbImage::from_fn(w, h, |x, y| {
                    let p = y as usize * s.width + x as usize;
                    image::Rgb([byte(img[p]), byte(img[plane + p]), byte(img[2 * plane + p])])
                })
                .into()
            };
            let mut out = Cursor::new(Vec::new());
            picture.write_to(&mut out, image::ImageFormat::Png)?;
            Ok(Bytes::from(out.into_inner()))
        })
        .collect()
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One client: posts images back to back until `deadline`, reconnecting after a failure.
async fn client(uri: Uri, images: Arc<Vec<Bytes>>, first: usize, deadline: Instant) -> ClientLog {
    let mut log = ClientLog::default();
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut sender: Option<Sender> = None;
    let mut next = first;
    while Instant::now() < deadline {
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(&authority).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    log.error("connect".into(), e.to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let body = images[next % images.len()].clone();
        next += 1;
        let request = match Request::post(path.as_str())
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "image/png")
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(e) => {
                log.error("request".into(), e.to_string());
                break;
            }
        };
        let started = Instant::now();
        let response = match s.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                log.error("send".into(), e.to_string());
                sender = None;
                continue;
            }
        };
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                log.error("read".into(), e.to_string());
                sender = None;
                continue;
            }
        };
        log.latencies_us.push(started.elapsed().as_micros() as u64);
        if status.is_success() {
            log.ok += 1;
        } else {
            log.error(
                format!("HTTP {}", status.as_u16()),
                String::from_utf8_lossy(&body).chars().take(300).collect(),
            );
        }
    }
    log
}

/// The value of `key` (in kB) in `/proc/PID/status`.
fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients == 0 || !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--clients and --duration must be positive");
    }
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("--url {}", args.url))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        bail!("--url {}: expected http://HOST:PORT/PATH", args.url);
    }
    let images = Arc::new(pngs(&args)?);
    if images.is_empty() {
        bail!("{}: no images", args.images);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let logs: Vec<ClientLog> = local.block_on(&runtime, async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let first = c * images.len() / args.clients;
                tokio::task::spawn_local(client(uri.clone(), images.clone(), first, deadline))
            })
            .collect();
        let mut logs = Vec::new();
        for t in tasks {
            logs.push(t.await.unwrap_or_default());
        }
        logs
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u64> = logs
        .iter()
        .flat_map(|l| l.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let ok: u64 = logs.iter().map(|l| l.ok).sum();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for l in &logs {
        for (k, v) in &l.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    let error_count: u64 = errors.values().sum();
    let first_error = logs.iter().find_map(|l| l.first_error.clone());
    let ms = |us: u64| us as f64 / 1e3;
    let mean = latencies.iter().sum::<u64>() as f64 / latencies.len().max(1) as f64;
    let peak_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmHWM:"));
    let rss_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
    let report = serde_json::json!({
        "url": args.url,
        "clients": args.clients,
        "seconds": elapsed,
        "images": images.len(),
        "ok": ok,
        "errors": error_count,
        "errors_by_kind": errors,
        "first_error": first_error,
        "requests_per_s": ok as f64 / elapsed,
        "latency_ms": {
            "mean": mean / 1e3,
            "p50": ms(percentile(&latencies, 50.0)),
            "p90": ms(percentile(&latencies, 90.0)),
            "p99": ms(percentile(&latencies, 99.0)),
            "max": ms(latencies.last().copied().unwrap_or(0)),
        },
        "server_pid": args.server_pid,
        "server_peak_rss_mib": peak_kb.map(|k| k as f64 / 1024.0),
        "server_rss_mib": rss_kb.map(|k| k as f64 / 1024.0),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} clients, {:.1} s, {} images: {ok} ok, {error_count} errors, {:.1} requests/s",
            args.clients,
            elapsed,
            images.len(),
            ok as f64 / elapsed
        );
        println!(
            "latency ms: mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            mean / 1e3,
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 90.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or(0))
        );
        for (kind, n) in &errors {
            println!("errors: {kind}: {n}");
        }
        if let Some(e) = &first_error {
            println!("first error: {e}");
        }
        match (peak_kb, args.server_pid) {
            (Some(k), Some(pid)) => println!(
                "server pid {pid}: peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
                k as f64 / 1024.0,
                rss_kb.unwrap_or(0) as f64 / 1024.0
            ),
            (None, Some(pid)) => println!("server pid {pid}: /proc/{pid}/status not readable"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
