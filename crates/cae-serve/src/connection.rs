//! Connections: the accept loop, in place of `axum::serve`, which a server facing slow or
//! hostile clients cannot use as it is. It adds what that loop lacks:
//!
//! - a **header-read timeout**: hyper has one, but it only runs with a timer, and axum sets
//!   none, so a client that sent half a request head held its connection forever. Here every
//!   connection gets hyper's timer, so a head (or, on an idle keep-alive connection, the next
//!   head) that is not complete within `--header-timeout` closes the connection;
//! - a **bound on open connections**, kept below the process's descriptor limit: when every
//!   slot is taken, the connection that has waited longest without a request in progress (a
//!   half-sent head, an idle keep-alive) is closed to make room, so a flood of slow clients
//!   cannot lock out `/healthz` or real requests; only when every connection has a request in
//!   progress is the newcomer closed at once;
//! - a **deep accept queue** ([`BACKLOG`]), so a burst of connections is queued, not dropped;
//! - a **drain deadline**: on shutdown the listener closes, connections without a request in
//!   progress close at once (half-sent heads included: no answer is lost), requests in
//!   progress may finish, and at the deadline whatever is left is cut, so SIGTERM always ends.

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Descriptors kept back from connections for everything else the process opens.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Connections the kernel completes and queues before they are accepted (capped by the
/// system's `somaxconn`). The standard library's 128 overflowed while a burst of slow clients
/// connected, and the kernel then dropped new SYNs: a `/healthz` probe took the 1 s of a TCP
/// retransmit.
const BACKLOG: u32 = 4096;

/// A listener on `addr` with the [`BACKLOG`] above.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library's bind: a restarted server may take its port back at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The open connections, shared by the accept loop (which admits and evicts) and `/healthz`
/// (which reports them).
#[derive(Clone, Debug)]
pub struct Connections {
    inner: Arc<Registry>,
}

#[derive(Debug)]
struct Registry {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Most open at once: `--max-connections`, lowered to what the descriptor limit allows.
    limit: usize,
    next_id: AtomicU64,
    /// Idle connections closed to make room for a new one.
    evicted: AtomicU64,
    /// New connections closed at once because every slot had a request in progress.
    refused: AtomicU64,
    /// Signalled whenever a connection ends (shutdown waits on it).
    ended: Notify,
    epoch: Instant,
}

/// One open connection.
#[derive(Debug)]
struct Slot {
    /// Requests in progress, answers still being written included.
    busy: AtomicUsize,
    /// When the connection last became idle (accepted, or its last answer written), in
    /// milliseconds since the registry's epoch.
    idle_since_ms: AtomicU64,
    /// Tells the connection's task to drop it (eviction, or the drain deadline).
    close: Notify,
}

/// What `/healthz` reports about connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionStats {
    pub open: usize,
    pub limit: usize,
    pub evicted: u64,
    pub refused: u64,
}

impl Connections {
    /// Room for at most `max` connections (see [`descriptor_room`] for the real bound).
    pub fn new(max: usize) -> Connections {
        Connections {
            inner: Arc::new(Registry {
                slots: Mutex::new(HashMap::new()),
                limit: max.max(1),
                next_id: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                ended: Notify::new(),
                epoch: Instant::now(),
            }),
        }
    }

    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.slots().len(),
            limit: self.inner.limit,
            evicted: self.inner.evicted.load(Ordering::Relaxed),
            refused: self.inner.refused.load(Ordering::Relaxed),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        // A panic while holding this lock leaves the map itself intact.
        self.inner
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// A slot for a new connection, evicting the longest-idle one when all are taken; `None`
    /// when every open connection has a request in progress.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots();
        if slots.len() >= self.inner.limit {
            if !Self::evict_idlest(&mut slots) {
                self.inner.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        slots.insert(id, slot.clone());
        Some((id, slot))
    }

    /// Closes the connection idle longest, if any is idle.
    fn evict_idlest(slots: &mut HashMap<u64, Arc<Slot>>) -> bool {
        let idlest = slots
            .iter()
            .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, s)| s.idle_since_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let Some(slot) = idlest.and_then(|id| slots.remove(&id)) else {
            return false;
        };
        // A stored permit: the task closes the connection even if it is not waiting yet.
        slot.close.notify_one();
        true
    }

    /// Makes room after the process ran out of descriptors.
    fn evict_for_descriptor(&self) {
        if Self::evict_idlest(&mut self.slots()) {
            self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&self, id: u64) {
        self.slots().remove(&id);
        self.inner.ended.notify_waiters();
    }

    /// Closes every connection without a request in progress; returns how many.
    fn close_idle(&self) -> usize {
        let mut slots = self.slots();
        let idle: Vec<u64> = slots
            .iter()
            .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in &idle {
            if let Some(slot) = slots.remove(id) {
                slot.close.notify_one();
            }
        }
        idle.len()
    }

    /// Closes every connection still open; returns how many there were.
    fn cut_all(&self) -> usize {
        let mut slots = self.slots();
        let n = slots.len();
        for (_, slot) in slots.drain() {
            slot.close.notify_one();
        }
        n
    }
}

/// Marks a connection busy while a request is in progress on it, its answer's body included.
struct Busy {
    slot: Arc<Slot>,
    connections: Connections,
}

impl Busy {
    fn enter(slot: &Arc<Slot>, connections: &Connections) -> Busy {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy {
            slot: slot.clone(),
            connections: connections.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.slot
            .idle_since_ms
            .store(self.connections.now_ms(), Ordering::Relaxed);
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the accept loop ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// When the drain deadline passes (shutdown after it must not wait for anything).
    pub deadline: Instant,
    /// Connections closed at once because no request was in progress on them.
    pub idle: usize,
    /// Connections still open at the deadline, closed without an answer.
    pub cut: usize,
}

/// Serves `app` on `listener` until `stop` resolves, then drains for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: Connections,
    header_timeout: Duration,
    drain: Duration,
    stop: impl Future<Output = ()>,
) -> Stopped {
    let (draining_tx, draining) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some((id, slot)) = connections.admit() else {
                        drop(stream);
                        continue;
                    };
                    let task = ConnectionTask {
                        id,
                        slot,
                        connections: connections.clone(),
                        app: app.clone(),
                        header_timeout,
                        draining: draining.clone(),
                    };
                    tokio::spawn(task.run(stream));
                }
                Err(e) => accept_failed(&e, &connections).await,
            },
            () = &mut stop => break,
        }
    }
    drop(listener);
    let deadline = Instant::now() + drain;
    // Receivers that already ended are fine: nobody left to tell.
    let _ = draining_tx.send(true);
    let idle = connections.close_idle();
    while connections.stats().open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ended = connections.inner.ended.notified();
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), ended).await;
    }
    let cut = connections.cut_all();
    Stopped {
        deadline,
        idle,
        cut,
    }
}

/// An accept error: out of descriptors makes room by evicting an idle connection; anything
/// else (a client that reset before being accepted) is only waited out briefly.
async fn accept_failed(e: &std::io::Error, connections: &Connections) {
    if is_out_of_descriptors(e) {
        connections.evict_for_descriptor();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// One connection's task: hyper's HTTP/1 with the header timeout, closed early on eviction,
/// shut down gracefully when the server drains.
struct ConnectionTask {
    id: u64,
    slot: Arc<Slot>,
    connections: Connections,
    app: Router,
    header_timeout: Duration,
    draining: watch::Receiver<bool>,
}

impl ConnectionTask {
    async fn run(mut self, stream: TcpStream) {
        let (slot, connections, app) = (self.slot.clone(), self.connections.clone(), self.app);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::enter(&slot, &connections);
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(Body::new)).await?;
                // The connection stays busy until the answer's body is written or dropped.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _busy = &busy;
                        frame
                    }))
                }))
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut draining = *self.draining.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                // Errors here are the client's (reset, bad head, header timeout): nothing to do.
                _ = conn.as_mut() => break,
                () = self.slot.close.notified() => break,
                changed = self.draining.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        self.connections.remove(self.id);
    }
}

/// How many connections the descriptor limit leaves room for, after raising the soft limit to
/// the hard one (most systems start processes at a soft 1024 under a far higher hard limit);
/// `None` where the limit cannot be read.
pub fn descriptor_room() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the `rlimit` passed by pointer,
        // which lives on this stack frame for both calls.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        // `rlim_t` is u64 on Linux, not on every Unix.
        #[allow(clippy::useless_conversion)]
        let soft = u64::try_from(limit.rlim_cur);
        Some(
            soft.unwrap_or(u64::MAX)
                .saturating_sub(RESERVED_DESCRIPTORS)
                .max(1),
        )
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn when_all_slots_are_taken_the_connection_idle_longest_makes_room() {
        let c = Connections::new(2);
        let (_, old) = c.admit().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (_, newer) = c.admit().unwrap();
        // A third evicts the older idle one, which is told to close.
        let (third_id, third) = c.admit().unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(1), old.close.notified());
        assert!(closed.await.is_ok(), "the idlest was not told to close");
        let s = c.stats();
        assert_eq!((s.open, s.evicted, s.refused), (2, 1, 0));
        // Connections with a request in progress are never evicted: with both busy, a
        // newcomer is refused.
        let _b1 = Busy::enter(&newer, &c);
        let _b2 = Busy::enter(&third, &c);
        assert!(c.admit().is_none());
        assert_eq!(c.stats().refused, 1);
        drop(_b2);
        assert!(c.admit().is_some(), "an idle slot again");
        c.remove(third_id);
        assert_eq!(c.stats().open, 2);
    }
}
