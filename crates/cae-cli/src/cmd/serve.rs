//! `cae serve RUN`: the run behind HTTP (see the `cae-serve` crate). This file only turns flags
//! into `ServeOptions` and reports where the server listens and how it stopped.

use crate::args::ServeArgs;
use anyhow::Context;
use cae_serve::{BatchOptions, Limits, ServeOptions, serve};
use std::time::Duration;

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| value.is_finite() && !d.is_zero())
        .with_context(|| format!("{flag} {value}: expected a positive number"))
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let device = a.run.device.device()?;
    let score = a.score.asked()?;
    let max_wait = if a.max_wait_ms == 0.0 {
        Duration::ZERO
    } else {
        seconds("--max-wait-ms", a.max_wait_ms / 1e3)?
    };
    let options = ServeOptions {
        run: a.run.path,
        addr: a.addr,
        limits: Limits {
            max_body_bytes: a.max_body,
            max_side: a.max_side,
            max_pixels: a.max_pixels,
            max_images: a.max_images,
            timeout: seconds("--timeout", a.timeout)?,
            max_concurrency: a.max_concurrency,
            header_timeout: seconds("--header-timeout", a.header_timeout)?,
            max_connections: a.max_connections,
            drain_timeout: if a.drain_timeout == 0.0 {
                Duration::ZERO
            } else {
                seconds("--drain-timeout", a.drain_timeout)?
            },
            decode_memory: a.decode_memory.saturating_mul(1 << 20),
        },
        batch: BatchOptions {
            max_batch: a.max_batch,
            max_wait,
            queue: a.queue,
        },
        score,
        device,
    };
    let run = options.run.display().to_string();
    let asked = options.limits.max_connections;
    let stop = serve(options, |ready| {
        if ready.max_connections < asked {
            eprintln!(
                "cae serve: the descriptor limit leaves room for {} connections, fewer than --max-connections {asked}",
                ready.max_connections
            );
        }
        eprintln!("cae serve: {run} listening on http://{}", ready.addr);
    })?;
    let mut closed = Vec::new();
    if stop.idle > 0 {
        closed.push(format!(
            "closed {} connection(s) with no request in progress",
            stop.idle
        ));
    }
    if stop.cut > 0 {
        closed.push(format!(
            "cut {} request(s) still running after the drain timeout",
            stop.cut
        ));
    }
    if closed.is_empty() {
        eprintln!("cae serve: stopped");
    } else {
        eprintln!("cae serve: stopped; {}", closed.join("; "));
    }
    Ok(())
}
