//! The bad-input corpus (`tests/bad-inputs/` at the repository root): every case runs through
//! the real `cae` binary and must fail cleanly — its exit code, exactly one `error:` line with
//! the expected text, no panic, no backtrace, a bounded peak memory where the case says so, and
//! no run directory left behind by a `train` that failed. `cases.toml` there describes the
//! manifest; this file only executes it.

use crate::util::*;
use serde::Deserialize;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    args: Vec<String>,
    /// Text the single `error:` line must contain.
    error: String,
    #[serde(default = "failure")]
    exit: i32,
    #[serde(default)]
    needs_run: bool,
    /// Copy the trained run to this folder (inside the case's folder) and damage it.
    copy_run: Option<String>,
    #[serde(default)]
    damage: Vec<Damage>,
    max_rss_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Damage {
    file: String,
    how: String,
    #[serde(default)]
    text: String,
    /// Byte to flip (default: the middle one).
    at: Option<usize>,
}

fn failure() -> i32 {
    1
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-inputs")
}

/// Runs `cae args…` in `dir` and returns its output with its peak resident memory in KiB
/// (from `wait4`, so it is this child's own figure, not that of other tests' children).
// The child is reaped by `wait4` below, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(dir: &Path, args: &[String]) -> (Output, u64) {
    let mut child = cae()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cae");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes into the two locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    (output, usage.ru_maxrss as u64)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn damage(file: &Path, d: &Damage) {
    let bytes = std::fs::read(file).unwrap_or_default();
    let new = match d.how.as_str() {
        "empty" => Vec::new(),
        "half" => bytes[..bytes.len() / 2].to_vec(),
        "flip" => {
            let mut b = bytes;
            let at = d.at.unwrap_or(b.len() / 2).min(b.len() - 1);
            b[at] ^= 0x40;
            b
        }
        "text" => d.text.as_bytes().to_vec(),
        "append" => [bytes, d.text.as_bytes().to_vec()].concat(),
        other => panic!("unknown damage '{other}' for {}", file.display()),
    };
    std::fs::write(file, new).expect("damage");
}

/// Runs one case in its own folder; returns what went wrong, if anything.
fn check_case(base: &Path, case: &Case) -> Result<(), String> {
    let dir = base.join("cases").join(&case.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for shared in ["files", "mnist", "run"] {
        let _ = std::os::unix::fs::symlink(base.join(shared), dir.join(shared));
    }
    if let Some(copy) = &case.copy_run {
        copy_dir(&base.join("run"), &dir.join(copy));
        for d in &case.damage {
            damage(&dir.join(copy).join(&d.file), d);
        }
    }
    let (o, rss_kib) = run_measured(&dir, &case.args);
    let err = stderr(&o);
    let context = format!(
        "exit {:?}, peak {} MiB, stderr:\n{err}",
        o.status,
        rss_kib >> 10
    );
    if o.status.code() != Some(case.exit) {
        return Err(format!("expected exit {}; {context}", case.exit));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        return Err(format!("panic; {context}"));
    }
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    match errors[..] {
        [line] if line.contains(&case.error) => {}
        [_] => return Err(format!("error line lacks {:?}; {context}", case.error)),
        _ => return Err(format!("{} error lines; {context}", errors.len())),
    }
    if let Some(limit) = case.max_rss_mb
        && rss_kib > limit << 10
    {
        return Err(format!("peak memory above {limit} MiB; {context}"));
    }
    let out = case.args.iter().position(|a| a == "--out");
    if case.args.first().is_some_and(|a| a == "train")
        && let Some(run) = out.and_then(|i| case.args.get(i + 1))
        && dir.join(run).join("config.toml").exists()
    {
        return Err(format!("a failed train left a run in {run}; {context}"));
    }
    Ok(())
}

#[test]
fn every_bad_input_fails_with_its_one_line_error() {
    let corpus = corpus_dir();
    let text = std::fs::read_to_string(corpus.join("cases.toml")).expect("read cases.toml");
    let manifest: Manifest = toml::from_str(&text).expect("parse cases.toml");
    let d = Dir::new("bad-corpus");
    std::os::unix::fs::symlink(
        corpus.join("files").canonicalize().expect("corpus files"),
        d.join("files"),
    )
    .expect("link files");
    let fixture = mnist_fixture();
    let mnist = d.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    for f in [
        fixture.clone(),
        fixture.with_file_name("mnist500-labels-idx1-ubyte.gz"),
    ] {
        std::fs::copy(&f, mnist.join(f.file_name().unwrap())).unwrap();
    }
    if manifest.case.iter().any(|c| c.needs_run) {
        train_tiny_run(&d.path, "mnist/mnist500-images-idx3-ubyte.gz", "run");
    }
    let mut names: Vec<&str> = manifest.case.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        manifest.case.len(),
        "case names must be unique"
    );

    // A few cases at a time: each is a short process.
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(case) = manifest.case.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(why) = check_case(&d.path, case) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {why}", case.name));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n\n{}",
        failures.len(),
        manifest.case.len(),
        failures.join("\n\n")
    );
}
