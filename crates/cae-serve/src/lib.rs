//! `cae-serve`: a trained `cae` run behind HTTP — anomaly scores, heatmaps, reconstructions
//! and latent codes — kept apart from the `cae` library (which knows nothing of HTTP) and from
//! the CLI (which only parses flags and calls [`serve`]).
//!
//! One request's path: [`upload`] reads the image(s) from the body, [`intake`] checks and
//! decodes them by the run's rules, [`batcher`] gathers images from concurrent requests into
//! one model call run by [`forward`] on a dedicated thread, and [`answer`] scores them and
//! draws pictures with the library's functions. [`handlers`] holds the endpoints, [`router`]
//! the layers that keep the server up (limits, timeouts, load shedding, panics → 500, JSON
//! errors), [`budget`] the decode memory shared by all requests, [`connection`] the accept
//! loop (header timeout, connection bound, drain deadline), [`served_run`] what is known about
//! the run, [`options`] the flags' defaults, [`page`] the inspection page at `GET /`.

pub mod answer;
pub mod batcher;
pub mod budget;
pub mod connection;
pub mod error;
pub mod forward;
pub mod handlers;
pub mod intake;
pub mod options;
pub mod page;
pub mod router;
pub mod served_run;
pub mod upload;

pub use batcher::BatchOptions;
pub use connection::ConnectionStats;
pub use error::{ApiError, ServeError};
pub use options::{Limits, ServeOptions};

use batcher::Batcher;
use connection::{Connections, Stopped, descriptor_room};
use forward::ModelRunner;
use handlers::AppState;
use served_run::ServedRun;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

/// Where the server listens and how many connections it holds at most, for `on_ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub addr: SocketAddr,
    /// `--max-connections`, or less when the descriptor limit allows fewer.
    pub max_connections: usize,
}

/// How the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Connections closed at once because no request was in progress on them.
    pub idle: usize,
    /// Connections still open at the drain deadline, closed without an answer.
    pub cut: usize,
}

/// The model worker's runner: the served model, and for a run trained without `--resize` the
/// any-size runner, built from the same weights (a copy, never a second read of a run that may
/// still be training, so both paths score with one epoch's model).
fn model_runner(
    run: &ServedRun,
    model: cae::model::Autoencoder,
    options: &ServeOptions,
) -> Result<ModelRunner, ServeError> {
    if run.intake.resize {
        return Ok(ModelRunner::new(model, run.input, options.device.clone()));
    }
    let dir = cae::run::RunDir::new(&options.run);
    let loaded = cae::run::LoadedRun {
        config: run.config.clone(),
        spec: dir.spec(&run.config)?,
        dir,
        model: model.clone(),
        device: options.device.clone(),
    };
    let any = cae::denoise::Denoiser::new(loaded, &options.device)
        .map_err(|e| ServeError::Runtime(format!("{}: {e}", options.run.display())))?;
    Ok(ModelRunner::new(model, run.input, options.device.clone()).with_any_size(any))
}

/// Loads the run, starts the model worker and serves until SIGTERM or SIGINT; then stops
/// accepting, closes connections with no request in progress, lets in-flight requests finish
/// within `--drain-timeout`, cuts what is left, and returns. `on_ready` gets the bound address (useful with port 0) once the server
/// accepts connections.
pub fn serve(options: ServeOptions, on_ready: impl FnOnce(Ready)) -> Result<Stop, ServeError> {
    options.check()?;
    let (run, model) = ServedRun::load(&options)?;
    let mut runner = model_runner(&run, model, &options)?;
    let (batcher, worker) = Batcher::spawn(options.batch, move |jobs| runner.run(jobs))
        .map_err(|e| ServeError::Runtime(format!("cannot start the model worker: {e}")))?;
    let limits = options.limits;
    let room = descriptor_room().map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let connections = Connections::new(limits.max_connections.min(room));
    let max_connections = connections.stats().limit;
    let app = router::router(AppState::new(run, batcher, limits, connections.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cae-serve")
        .build()
        .map_err(|e| ServeError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let addr = options.addr;
    let served = runtime.block_on(async move {
        // Signal handlers first, so a signal right after "ready" is not missed.
        let stop = shutdown_signal()
            .map_err(|e| ServeError::Runtime(format!("cannot watch for signals: {e}")))?;
        let listener =
            connection::listen(addr).map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        on_ready(Ready {
            addr: bound,
            max_connections,
        });
        let stopped = connection::serve(
            listener,
            app,
            connections,
            limits.header_timeout,
            limits.drain_timeout,
            stop,
        )
        .await;
        Ok::<Stopped, ServeError>(stopped)
    })?;
    // Blocking work (a decode) and the model worker get what is left of the drain deadline;
    // the worker ends once the last handle to it is dropped. Stragglers are not waited for.
    let left = || served.deadline.saturating_duration_since(Instant::now());
    runtime.shutdown_timeout(left());
    while !worker.is_finished() && !left().is_zero() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if worker.is_finished() && worker.join().is_err() {
        return Err(ServeError::Runtime("the model worker panicked".into()));
    }
    Ok(Stop {
        idle: served.idle,
        cut: served.cut,
    })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C elsewhere than Unix).
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
