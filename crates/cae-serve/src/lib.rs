//! `cae-serve`: a trained `cae` run behind HTTP — anomaly scores, heatmaps, reconstructions
//! and latent codes — kept apart from the `cae` library (which knows nothing of HTTP) and from
//! the CLI (which only parses flags and calls [`serve`]).
//!
//! One request's path: [`upload`] reads the image(s) from the body, [`intake`] checks and
//! decodes them by the run's rules, [`batcher`] gathers images from concurrent requests into
//! one model call run by [`forward`] on a dedicated thread, and [`answer`] scores them and
//! draws pictures with the library's functions. [`handlers`] holds the endpoints, [`router`]
//! the layers that keep the server up (limits, timeouts, load shedding, panics → 500, JSON
//! errors), [`served_run`] what is known about the run, [`options`] the flags' defaults.

pub mod answer;
pub mod batcher;
pub mod error;
pub mod forward;
pub mod handlers;
pub mod intake;
pub mod options;
pub mod router;
pub mod served_run;
pub mod upload;

pub use batcher::BatchOptions;
pub use error::{ApiError, ServeError};
pub use options::{Limits, ServeOptions};

use batcher::Batcher;
use forward::ModelRunner;
use handlers::AppState;
use served_run::ServedRun;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long shutdown waits for blocking work and the model worker after the last connection.
const DRAIN: Duration = Duration::from_secs(10);

/// Loads the run, starts the model worker and serves until SIGTERM or SIGINT; then stops
/// accepting, lets in-flight requests finish, and returns `Ok`. `on_ready` gets the bound
/// address (useful with port 0) once the server accepts connections.
pub fn serve(options: ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    options.check()?;
    let (run, model) = ServedRun::load(&options)?;
    let runner = ModelRunner::new(model, run.input, options.device.clone());
    let (batcher, worker) = Batcher::spawn(options.batch, move |jobs| runner.run(jobs))
        .map_err(|e| ServeError::Runtime(format!("cannot start the model worker: {e}")))?;
    let app = router::router(AppState::new(run, batcher, options.limits));
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
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        on_ready(bound);
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| ServeError::Runtime(format!("the server failed: {e}")))
    });
    runtime.shutdown_timeout(DRAIN);
    // The worker ends once the last handle to it is dropped; do not hang on a straggler.
    let deadline = Instant::now() + DRAIN;
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if worker.is_finished() && worker.join().is_err() {
        return Err(ServeError::Runtime("the model worker panicked".into()));
    }
    served
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
