//! `cae serve` under slow and hostile clients, over real sockets against the real binary:
//! half-sent request heads (closed after `--header-timeout`; a thousand of them held at once
//! while `/healthz` keeps answering), more connections than `--max-connections`, a body
//! declared far over `--max-body` (413 from the header, no `100 Continue`), decompression
//! bombs (a 127 KiB PNG declaring 4096×4096 16-bit RGBA pixels) bounded by `--decode-memory`,
//! and SIGTERM with all of that still open (exit within `--drain-timeout`).

use crate::serve::{Server, read_answer, request, tiny_run_with};
use crate::util::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The start of a request head, cut before its end: the server waits for the rest.
const HALF_HEAD: &[u8] = b"POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Ty";

/// Raises this process's soft descriptor limit so it can hold `want` sockets (the server
/// child inherits it, and raises its own further); returns how many it can hold.
fn hold_room(want: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only access the local `rlimit` passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let need = (want as libc::rlim_t).saturating_add(256);
            if limit.rlim_cur < need {
                limit.rlim_cur = need.min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    // What the test binary itself has open (other tests run beside it) stays below 256.
    want.min((limit.rlim_cur as usize).saturating_sub(256))
}

/// The head of a `/v1/score` PNG upload of `len` bytes.
fn request_head(len: usize) -> Vec<u8> {
    format!(
        "POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n\
         Content-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// Sets its flag when dropped.
struct Finish<'a>(&'a AtomicBool);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `/healthz` over a fresh connection: its answer and how long it took.
fn healthz(addr: SocketAddr) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    let a = request(addr, "GET", "/healthz", None, b"");
    let took = start.elapsed();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    (a.json(), took)
}

/// A 16-bit RGBA PNG of `side`×`side` zero pixels: ~127 KiB on disk for side 4096, 128 MiB
/// once decoded. Written by hand so the test never holds the decoded image itself.
fn bomb_png(side: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]); // 16-bit, RGBA, deflate, no filter, no interlace
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; 1 + side as usize * 8]; // filter byte + 8 bytes a pixel
    for _ in 0..side {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", b"");
    png
}

/// The server's peak resident memory (VmHWM) in MiB, on Linux.
fn peak_rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[test]
fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let d = Dir::new("serve-header-timeout");
    tiny_run_with(&d, &[]);
    let server = Server::start(&d.path, "run", &["--header-timeout", "1"]);
    let started = Instant::now();
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(HALF_HEAD).unwrap();
    let silent = TcpStream::connect(server.addr).unwrap();
    for mut stream in [half, silent] {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        // Closed by the server: end of stream (or a reset), never a read timeout.
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("unexpected answer {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "still open"),
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert_eq!(healthz(server.addr).0["connections"]["open"], 1);
}

#[test]
fn when_every_connection_slot_is_taken_the_idlest_is_closed_and_healthz_still_answers() {
    let d = Dir::new("serve-max-connections");
    tiny_run_with(&d, &[]);
    let server = Server::start(&d.path, "run", &["--max-connections", "8"]);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(HALF_HEAD).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (h, took) = healthz(server.addr);
    assert!(took < Duration::from_millis(500), "{took:?}");
    let c = &h["connections"];
    assert_eq!(c["limit"], 8, "{h}");
    assert!(c["open"].as_u64().unwrap() <= 8, "{h}");
    assert!(c["evicted"].as_u64().unwrap() >= 12, "{h}");
    drop(held);
}

#[test]
fn a_declared_content_length_over_the_limit_is_413_at_once() {
    let d = Dir::new("serve-content-length");
    tiny_run_with(&d, &[]);
    let server = Server::start(&d.path, "run", &["--max-body", "65536", "--timeout", "30"]);
    for expect in ["", "Expect: 100-continue\r\n"] {
        let started = Instant::now();
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n{expect}\
             Content-Length: 99999999999\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let a = read_answer(s);
        let took = started.elapsed();
        let j = a.json();
        assert_eq!(a.status, 413, "{expect:?}: {j}");
        assert!(j["error"].as_str().unwrap().contains("99999999999"), "{j}");
        assert!(took < Duration::from_secs(5), "{expect:?}: took {took:?}");
    }
}

#[test]
fn healthz_answers_within_100_ms_while_1000_half_sent_requests_and_8_bombs_are_held_then_sigterm_exits_within_the_drain_timeout()
 {
    const DRAIN_S: u64 = 3;
    let want = 1000;
    let clients = hold_room(want);
    if clients < want {
        eprintln!("descriptor limit: holding {clients} half-sent requests instead of {want}");
    }
    let d = Dir::new("serve-hostile");
    // A run trained with --resize: requests of any size are decoded and resized.
    tiny_run_with(&d, &["--resize", "28x28"]);
    // A long header timeout, so the half-sent requests are still open at SIGTERM (which closes
    // them at once: no request is in progress on them) and a stalled upload is still running
    // (which SIGTERM waits for, until the drain timeout); the default 1 GiB decode budget (one
    // bomb's worst case is 513 MiB, so they decode one at a time).
    let header_timeout = "120";
    let drain = DRAIN_S.to_string();
    let mut server = Server::start(
        &d.path,
        "run",
        &[
            "--header-timeout",
            header_timeout,
            "--drain-timeout",
            &drain,
        ],
    );
    let addr = server.addr;
    let bomb = bomb_png(4096);
    assert!(bomb.len() < 140 << 10, "{} bytes", bomb.len());

    // /healthz every 20 ms on a thread, from before the first client to after the last bomb.
    let done = AtomicBool::new(false);
    let (probes, worst, bombs, peak) = std::thread::scope(|s| {
        // Stops the probe however this closure ends (a failed assertion too), so the scope
        // can join it.
        let _stop = Finish(&done);
        let t0 = Instant::now();
        let done = &done;
        let probe = s.spawn(move || {
            let (mut n, mut worst) = (0, Duration::ZERO);
            while !done.load(Ordering::Relaxed) {
                let took = healthz(addr).1;
                if took > Duration::from_millis(50) {
                    eprintln!("slow /healthz at {:?}: {took:?}", t0.elapsed());
                }
                worst = worst.max(took);
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (n, worst)
        });
        let held: Vec<TcpStream> = (0..clients)
            .map(|_| {
                let mut c = TcpStream::connect(addr).expect("connect");
                c.write_all(HALF_HEAD).expect("half a head");
                c
            })
            .collect();
        eprintln!("{clients} held at {:?}", t0.elapsed());
        let deadline = Instant::now() + Duration::from_secs(10);
        while healthz(addr).0["connections"]["open"].as_u64().unwrap() < clients as u64 + 1 {
            assert!(Instant::now() < deadline, "the server never held them all");
            std::thread::sleep(Duration::from_millis(50));
        }
        let bombs: Vec<u16> = std::thread::scope(|b| {
            let sent: Vec<_> = (0..8)
                .map(|_| b.spawn(|| request(addr, "POST", "/v1/score", Some("image/png"), &bomb)))
                .collect();
            sent.into_iter().map(|h| h.join().unwrap().status).collect()
        });
        eprintln!("bombs done at {:?}", t0.elapsed());
        let still = healthz(addr).0["connections"]["open"].as_u64().unwrap();
        assert!(
            still > clients as u64,
            "half-sent requests were dropped: {still} open"
        );
        // And one request in progress that never ends: a head, then part of its body.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(&request_head(bomb.len())).unwrap();
        stalled.write_all(&bomb[..1000]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        done.store(true, Ordering::Relaxed);
        let (probes, worst) = probe.join().unwrap();
        let peak = peak_rss_mib(server.child.id());
        // Still holding every half-sent request and the stalled upload.
        let started = Instant::now();
        server.terminate();
        let status = server.wait();
        let took = started.elapsed();
        // Read once: stderr() drains what the server printed.
        let said = server.stderr();
        assert_eq!(status.code(), Some(0), "{said}");
        assert!(
            took < Duration::from_secs(DRAIN_S + 2),
            "SIGTERM took {took:?} with a {DRAIN_S} s drain"
        );
        assert!(
            took >= Duration::from_secs(DRAIN_S),
            "the stalled upload was not waited for"
        );
        assert!(
            said.contains(&format!("closed {clients} connection(s) with no request"))
                && said.contains("cut 1 request(s) still running after the drain timeout"),
            "{said}"
        );
        eprintln!(
            "{clients} half-sent requests, 8 bombs: {probes} /healthz probes, slowest {worst:?}; \
             peak RSS {peak:?} MiB; SIGTERM exit after {took:?} (drain {DRAIN_S} s)"
        );
        drop((held, stalled));
        (probes, worst, bombs, peak)
    });
    assert_eq!(
        bombs,
        vec![200; 8],
        "every bomb is decoded, resized and scored"
    );
    assert!(probes > 10, "{probes} probes");
    assert!(
        worst < Duration::from_millis(100),
        "slowest /healthz {worst:?}"
    );
    // Linux only (VmHWM): the peak stays under the decode budget, the process's own included.
    if let Some(peak) = peak {
        assert!(
            peak < 1024,
            "peak RSS {peak} MiB over the 1 GiB decode budget"
        );
    }
}

#[test]
fn a_bomb_over_the_whole_decode_budget_is_413_from_its_header() {
    let d = Dir::new("serve-bomb-budget");
    tiny_run_with(&d, &["--resize", "28x28"]);
    let mut server = Server::start(&d.path, "run", &["--decode-memory", "256"]);
    let a = request(
        server.addr,
        "POST",
        "/v1/score",
        Some("image/png"),
        &bomb_png(4096),
    );
    let j = a.json();
    assert_eq!(a.status, 413, "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("--decode-memory"),
        "{j}"
    );
    server.terminate();
    assert_eq!(server.wait().code(), Some(0), "{}", server.stderr());
}
