//! Dynamic micro-batching: requests from many connections become one model call.
//!
//! One dedicated worker thread owns the model. A request [`Batcher::submit`]s its input into a
//! bounded queue and awaits a reply; the worker takes the first waiting input, then keeps
//! collecting until it holds `max_batch` inputs or `max_wait` has passed since the first,
//! runs them as one batch, and answers each. While a batch runs, new requests queue up, so
//! under load the next batch is full at once and the wait costs nothing; when idle, a lone
//! request waits at most `max_wait`.
//!
//! The worker never dies with a request: a runner that panics or fails answers every input of
//! that batch with an error and the worker takes the next batch. Inputs whose requester is
//! gone (timed out, disconnected) are dropped before the batch runs. A full queue is refused
//! at once ([`BatchError::Overloaded`]) instead of growing without bound.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the worker forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most inputs in one model call.
    pub max_batch: usize,
    /// Longest the first input of a batch waits for company.
    pub max_wait: Duration,
    /// Most inputs waiting for the worker; more are refused with 503.
    pub queue: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_batch: 64,
            max_wait: Duration::from_millis(2),
            queue: 1024,
        }
    }
}

/// A [`BatchOptions`] value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchOptionError {
    #[error("--max-batch must be at least 1")]
    MaxBatch,
    #[error("--queue must be at least 1")]
    Queue,
    #[error("--max-wait-ms {0}: at most 1000 ms")]
    MaxWait(u128),
}

impl BatchOptions {
    pub fn check(&self) -> Result<(), BatchOptionError> {
        if self.max_batch == 0 {
            return Err(BatchOptionError::MaxBatch);
        }
        if self.queue == 0 {
            return Err(BatchOptionError::Queue);
        }
        if self.max_wait > Duration::from_secs(1) {
            return Err(BatchOptionError::MaxWait(self.max_wait.as_millis()));
        }
        Ok(())
    }
}

/// Why an input got no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The queue is full.
    #[error("the model queue is full ({0} waiting); retry later")]
    Overloaded(usize),
    /// The worker has stopped (the server is shutting down).
    #[error("the model worker has stopped")]
    Stopped,
    /// The runner failed or panicked on the batch holding this input.
    #[error("{0}")]
    Failed(String),
}

/// Counters of the work done, for `/healthz`.
#[derive(Debug, Default)]
pub struct BatchStats {
    batches: AtomicU64,
    items: AtomicU64,
    largest: AtomicU64,
    failed: AtomicU64,
}

impl BatchStats {
    /// (batches run, inputs run, largest batch, failed batches).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.largest.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

struct Job<I, O> {
    input: I,
    reply: oneshot::Sender<Result<O, BatchError>>,
}

/// The submitting side; cheap to clone.
pub struct Batcher<I, O> {
    tx: SyncSender<Job<I, O>>,
    queue: usize,
    stats: Arc<BatchStats>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
            queue: self.queue,
            stats: self.stats.clone(),
        }
    }
}

/// What answers a submitted input.
pub type Reply<O> = oneshot::Receiver<Result<O, BatchError>>;

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the worker thread. `run` gets each batch's inputs in submission order and must
    /// return one output per input, in the same order. The thread ends once every `Batcher`
    /// clone is dropped; join the handle to wait for it.
    pub fn spawn<F, E>(options: BatchOptions, run: F) -> std::io::Result<(Self, JoinHandle<()>)>
    where
        F: FnMut(Vec<I>) -> Result<Vec<O>, E> + Send + 'static,
        E: std::fmt::Display,
    {
        let (tx, rx) = sync_channel(options.queue.max(1));
        let stats = Arc::new(BatchStats::default());
        let worker_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("cae-model".into())
            .spawn(move || work(rx, options, run, &worker_stats))?;
        Ok((
            Batcher {
                tx,
                queue: options.queue,
                stats,
            },
            handle,
        ))
    }

    /// Queues `input`; the reply arrives when its batch has run. Refused at once when the
    /// queue is full or the worker has stopped.
    pub fn submit(&self, input: I) -> Result<Reply<O>, BatchError> {
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Job { input, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(BatchError::Overloaded(self.queue)),
            Err(TrySendError::Disconnected(_)) => Err(BatchError::Stopped),
        }
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }
}

/// Collects the next batch: blocks for the first job, then gathers until `max_batch` or the
/// deadline; jobs already queued at the deadline still join. `None` once all senders are gone.
fn collect<I, O>(rx: &Receiver<Job<I, O>>, options: BatchOptions) -> Option<Vec<Job<I, O>>> {
    let first = rx.recv().ok()?;
    let deadline = Instant::now() + options.max_wait;
    let mut jobs = vec![first];
    while jobs.len() < options.max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = if left.is_zero() {
            rx.try_recv().ok()
        } else {
            match rx.recv_timeout(left) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => rx.try_recv().ok(),
                Err(RecvTimeoutError::Disconnected) => None,
            }
        };
        match next {
            Some(job) => jobs.push(job),
            None => break,
        }
    }
    Some(jobs)
}

fn work<I, O, F, E>(rx: Receiver<Job<I, O>>, options: BatchOptions, mut run: F, stats: &BatchStats)
where
    F: FnMut(Vec<I>) -> Result<Vec<O>, E>,
    E: std::fmt::Display,
{
    while let Some(mut jobs) = collect(&rx, options) {
        // Requests that timed out or hung up while queued are not worth a model call.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let n = jobs.len();
        let (inputs, replies): (Vec<I>, Vec<_>) =
            jobs.into_iter().map(|j| (j.input, j.reply)).unzip();
        let outcome = match catch_unwind(AssertUnwindSafe(|| run(inputs))) {
            Ok(Ok(outputs)) if outputs.len() == n => Ok(outputs),
            Ok(Ok(outputs)) => Err(format!(
                "the model returned {} results for a batch of {n}",
                outputs.len()
            )),
            // The message is what every input of the batch is answered with.
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!("the model panicked: {}", panic_message(&*panic))),
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.items.fetch_add(n as u64, Ordering::Relaxed);
        stats.largest.fetch_max(n as u64, Ordering::Relaxed);
        match outcome {
            Ok(outputs) => {
                for (reply, output) in replies.into_iter().zip(outputs) {
                    // A requester that left meanwhile simply gets nothing.
                    let _ = reply.send(Ok(output));
                }
            }
            Err(message) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                for reply in replies {
                    let _ = reply.send(Err(BatchError::Failed(message.clone())));
                }
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc::channel;

    fn options(max_batch: usize, max_wait_ms: u64, queue: usize) -> BatchOptions {
        BatchOptions {
            max_batch,
            max_wait: Duration::from_millis(max_wait_ms),
            queue,
        }
    }

    /// A runner that doubles its inputs and records each batch's size.
    fn doubling(sizes: Arc<Mutex<Vec<usize>>>) -> impl FnMut(Vec<u32>) -> Result<Vec<u32>, String> {
        move |inputs: Vec<u32>| {
            sizes.lock().unwrap().push(inputs.len());
            std::thread::sleep(Duration::from_millis(5));
            Ok(inputs.into_iter().map(|x| 2 * x).collect())
        }
    }

    #[test]
    fn concurrent_inputs_share_batches_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (batcher, worker) =
            Batcher::spawn(options(8, 50, 64), doubling(sizes.clone())).unwrap();
        let replies: Vec<_> = (0..20u32)
            .map(|i| (i, batcher.submit(i).unwrap()))
            .collect();
        for (i, reply) in replies {
            assert_eq!(reply.blocking_recv().unwrap(), Ok(2 * i));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&s| s <= 8), "{sizes:?}");
        // 20 inputs queued at once with room for 8 a batch: 3 batches, not 20.
        assert!(sizes.len() <= 4, "{sizes:?}");
        let (batches, items, largest, failed) = batcher.stats().snapshot();
        assert_eq!((batches, items, failed), (sizes.len() as u64, 20, 0));
        assert_eq!(largest, 8);
        drop(batcher);
        worker.join().unwrap();
    }

    #[test]
    fn a_lone_input_waits_at_most_about_max_wait() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (batcher, _worker) = Batcher::spawn(options(64, 5, 64), doubling(sizes)).unwrap();
        let started = Instant::now();
        let reply = batcher.submit(21).unwrap();
        assert_eq!(reply.blocking_recv().unwrap(), Ok(42));
        // 5 ms wait + 5 ms run; generous for a loaded machine, far below a stuck batch.
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_panicking_or_failing_runner_fails_its_batch_and_the_worker_goes_on() {
        let runner = |inputs: Vec<i32>| -> Result<Vec<i32>, String> {
            match inputs[0] {
                0 => panic!("boom"),
                1 => Err("model failed".into()),
                2 => Ok(vec![]),
                _ => Ok(inputs),
            }
        };
        let (batcher, _worker) = Batcher::spawn(options(1, 0, 8), runner).unwrap();
        let ask = |x| batcher.submit(x).unwrap().blocking_recv().unwrap();
        let e = ask(0).unwrap_err().to_string();
        assert!(e.contains("panicked") && e.contains("boom"), "{e}");
        assert_eq!(ask(1), Err(BatchError::Failed("model failed".into())));
        assert!(ask(2).unwrap_err().to_string().contains("0 results"));
        assert_eq!(ask(7), Ok(7));
        assert_eq!(batcher.stats().snapshot().3, 3);
    }

    #[test]
    fn a_full_queue_is_refused_and_abandoned_inputs_are_skipped() {
        // The runner says when it starts and blocks until released, so the queue fills
        // behind the first batch.
        let (entered_tx, entered) = channel::<()>();
        let (release, gate) = channel::<()>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_by_runner = seen.clone();
        let runner = move |inputs: Vec<u32>| {
            let _ = entered_tx.send(());
            gate.recv().ok();
            seen_by_runner
                .lock()
                .unwrap()
                .extend(inputs.iter().copied());
            Ok::<_, String>(inputs)
        };
        let (batcher, worker) = Batcher::spawn(options(1, 0, 2), runner).unwrap();
        let first = batcher.submit(1).unwrap();
        entered.recv().unwrap();
        let mut refused = 0;
        let mut kept = Vec::new();
        for i in 10..20 {
            match batcher.submit(i) {
                Ok(r) => kept.push(r),
                Err(e) => {
                    assert_eq!(e, BatchError::Overloaded(2));
                    refused += 1;
                }
            }
        }
        assert_eq!((kept.len(), refused), (2, 8));
        // Abandon both queued inputs, then let the worker go.
        drop(kept);
        release.send(()).unwrap();
        assert_eq!(first.blocking_recv().unwrap(), Ok(1));
        drop(batcher);
        drop(release);
        worker.join().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![1],
            "abandoned inputs reached the runner: {seen:?}"
        );
    }
}
