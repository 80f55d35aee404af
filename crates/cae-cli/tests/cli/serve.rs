//! `cae serve` end to end over real sockets: a tiny trained run served on a free port, every
//! endpoint, malformed requests, a stalled upload (504), concurrent clients, a request still
//! in flight when SIGTERM arrives (answered, then exit 0), and start-up errors.
//!
//! Requests are written by hand on a `TcpStream` (HTTP/1.1, `Connection: close`) so the test
//! binary needs no HTTP client.

use crate::util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `cae serve`, killed on drop if still alive.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `cae serve RUN --addr 127.0.0.1:0 EXTRA…` in `dir` and waits for its address.
    pub(crate) fn start(dir: &Path, run_dir: &str, extra: &[&str]) -> Server {
        let mut child = cae()
            .args(["serve", run_dir, "--addr", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cae serve");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // From here on, Drop kills and reaps the child on every path.
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match server.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(addr) = line.split("listening on http://").nth(1) {
                        server.addr = addr.trim().parse().expect("an address");
                        return server;
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        panic!("cae serve exited with {status}: {}", seen.join("\n"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("cae serve did not start: {}", seen.join("\n"));
    }

    pub(crate) fn terminate(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
    }

    /// Waits for the exit status (at most 30 s).
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("cae serve did not exit within 30 s of SIGTERM");
    }

    /// Everything printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "{} {}: {}",
            self.status,
            self.content_type,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// The request head for `body_len` bytes of `content_type`.
fn head(method: &str, path: &str, content_type: Option<&str>, body_len: usize) -> String {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(t) = content_type {
        h.push_str(&format!("Content-Type: {t}\r\n"));
    }
    h.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
    h
}

/// Reads a whole `Connection: close` answer (a reset after the answer, as when the server
/// refused a body it did not read, keeps what arrived).
pub(crate) fn read_answer(mut stream: TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if raw.is_empty() => panic!("reading the answer: {e}"),
            Err(_) => break,
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let text = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let header = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let mut body = raw[split + 4..].to_vec();
    if let Ok(n) = header("content-length").parse::<usize>() {
        body.truncate(n);
    }
    Answer {
        status,
        content_type: header("content-type"),
        body,
    }
}

pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(head(method, path, ctype, body.len()).as_bytes())
        .unwrap();
    // The server may answer (413) before reading a large body; a reset write is fine then.
    let _ = stream.write_all(body);
    read_answer(stream)
}

/// The `i`-th digit of the committed MNIST fixture as a 28x28 gray PNG.
pub(crate) fn digit_png(i: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(mnist_fixture()).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let pixels = raw[16 + i * 784..16 + (i + 1) * 784].to_vec();
    let img = image::GrayImage::from_raw(28, 28, pixels).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cae-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A one-epoch `pytorch-small` run on 64 fixture digits.
fn tiny_run(d: &Dir) {
    tiny_run_with(d, &[]);
}

/// [`tiny_run`] with more `cae train` flags (`--resize 28x28`: a run that resizes requests).
pub(crate) fn tiny_run_with(d: &Dir, extra: &[&str]) {
    let data = mnist_arg();
    let mut args = vec![
        "train",
        "--arch",
        "pytorch-small",
        "--data",
        &data,
        "--limit",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        "run",
    ];
    args.extend_from_slice(extra);
    ok(&run(&d.path, &args));
}

#[test]
fn serve_answers_refuses_bad_requests_and_drains_on_sigterm() {
    let d = Dir::new("serve-e2e");
    tiny_run(&d);
    let digit = digit_png(0);

    // Without a threshold: scores without labels; every malformed request is 4xx JSON.
    let mut server = Server::start(&d.path, "run", &["--max-body", "65536", "--timeout", "2"]);
    let addr = server.addr;
    let health = request(addr, "GET", "/healthz", None, b"");
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let model = request(addr, "GET", "/v1/model", None, b"").json();
    assert_eq!(model["input"]["shape"], "1x28x28");
    assert_eq!(model["threshold"]["fitted"], false);
    assert_eq!(model["training"]["train"]["epochs"], 1);
    let score = request(addr, "POST", "/v1/score", Some("image/png"), &digit);
    let s = score.json();
    assert_eq!(score.status, 200, "{s}");
    assert!(s["score"].as_f64().unwrap() > 0.0);
    assert!(s["is_anomaly"].is_null() && s["threshold"].is_null(), "{s}");
    let recon = request(addr, "POST", "/v1/reconstruct", Some("image/png"), &digit);
    assert_eq!(
        (recon.status, recon.content_type.as_str()),
        (200, "image/png")
    );
    let img = image::load_from_memory(&recon.body).unwrap();
    assert_eq!((img.width(), img.height()), (28, 28));
    let code = request(addr, "POST", "/v1/encode", Some("image/png"), &digit).json();
    assert_eq!(code["dim"], 392);

    // The digit's IHDR rewritten, CRC included, to claim 100000x100000 pixels.
    let mut huge = digit.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let (no_file_type, no_file) = {
        let b = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nhello\r\n--b--\r\n";
        ("multipart/form-data; boundary=b", b.as_bytes().to_vec())
    };
    // Another size: scored at its own size (the run did not resize), but a code of it is
    // refused.
    let other_size = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::new(32, 32)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "/v1/score",
            Some("image/png"),
            b"\x00garbage\xff".to_vec(),
            400,
        ),
        ("/v1/score", Some("image/png"), vec![], 400),
        ("/v1/score", Some("text/plain"), digit.clone(), 415),
        ("/v1/score", Some("application/json"), b"{}".to_vec(), 415),
        ("/v1/score", Some("image/png"), vec![7u8; 200_000], 413),
        ("/v1/score", Some("image/png"), huge, 413),
        ("/v1/encode", Some("image/png"), other_size, 422),
        ("/v1/score", Some(no_file_type), no_file, 400),
        (
            "/v1/heatmap",
            Some("image/jpeg"),
            b"\xff\xd8\xff\xe0 not really".to_vec(),
            400,
        ),
        ("/v1/missing", Some("image/png"), digit.clone(), 404),
    ];
    for (path, ctype, body, want) in cases {
        let a = request(addr, "POST", path, ctype, &body);
        let j = a.json();
        assert_eq!(a.status, want, "{path} {ctype:?}: {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
    }
    // A client that sends half a body and stalls gets 504 after --timeout.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(head("POST", "/v1/score", Some("image/png"), digit.len()).as_bytes())
        .unwrap();
    stalled.write_all(&digit[..digit.len() / 2]).unwrap();
    let a = read_answer(stalled);
    assert_eq!(a.status, 504, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(request(addr, "GET", "/healthz", None, b"").status, 200);
    server.terminate();
    assert_eq!(server.wait().code(), Some(0), "{}", server.stderr());

    // With a threshold: labels, normalised scores, heatmaps, several images per request.
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    let mut server = Server::start(&d.path, "run", &[]);
    let addr = server.addr;
    let model = request(addr, "GET", "/v1/model", None, b"").json();
    let threshold = model["threshold"]["image"].as_f64().unwrap();
    let a = request(
        addr,
        "POST",
        "/v1/score?heatmap=1",
        Some("image/png"),
        &digit,
    );
    let s = a.json();
    assert_eq!(a.status, 200, "{s}");
    assert_eq!(s["threshold"].as_f64(), Some(threshold));
    assert_eq!(s["is_anomaly"], s["score"].as_f64().unwrap() > threshold);
    assert!(s["heatmap_png_base64"].as_str().unwrap().len() > 100);
    let heat = request(addr, "POST", "/v1/heatmap", Some("image/png"), &digit);
    assert_eq!(
        (heat.status, heat.content_type.as_str()),
        (200, "image/png")
    );
    let (d1, d2) = (digit_png(1), digit_png(2));
    let (ctype, body) = multipart(&[("one.png", &d1), ("two.png", &d2)]);
    let many = request(addr, "POST", "/v1/score", Some(ctype.as_str()), &body).json();
    let results = many["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{many}");
    assert_eq!(results[1]["name"], "two.png");
    assert!(results.iter().all(|r| r["is_anomaly"].is_boolean()));

    // 16 concurrent clients: every answer is 200 and the same score for the same digit.
    let scores: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let a = request(addr, "POST", "/v1/score", Some("image/png"), &digit);
                    assert_eq!(a.status, 200);
                    a.json()["score"].as_f64().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        scores.iter().all(|v| (v - scores[0]).abs() < 1e-9),
        "{scores:?}"
    );

    // SIGTERM with a request in flight: it is answered, then the server exits 0.
    let mut in_flight = TcpStream::connect(addr).unwrap();
    in_flight
        .write_all(head("POST", "/v1/score", Some("image/png"), digit.len()).as_bytes())
        .unwrap();
    in_flight.write_all(&digit[..100]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(&digit[100..]).unwrap();
    let a = read_answer(in_flight);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(server.wait().code(), Some(0), "{}", server.stderr());
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after exit"
    );
}

#[test]
fn serve_start_up_errors_are_one_line() {
    let d = Dir::new("serve-errors");
    fails_with(
        &run(&d.path, &["serve", "nowhere", "--addr", "127.0.0.1:0"]),
        "not a cae run directory",
    );
    tiny_run(&d);
    fails_with(
        &run(
            &d.path,
            &["serve", "run", "--addr", "127.0.0.1:0", "--max-batch", "0"],
        ),
        "--max-batch",
    );
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--value", "0.05"],
    ));
    fails_with(
        &run(
            &d.path,
            &["serve", "run", "--addr", "127.0.0.1:0", "--score", "ssim"],
        ),
        "threshold fitted on the mse score",
    );
    // A taken port is a clean error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    fails_with(
        &run(&d.path, &["serve", "run", "--addr", &port]),
        "cannot listen on",
    );
}
