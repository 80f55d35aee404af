//! Test helpers: a scratch directory per test and a command runner for the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh scratch directory, removed when the test ends.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("cae-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Dir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, bytes).expect("write");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `cae` binary cargo built for these tests.
pub fn cae() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cae"))
}

/// Runs `cae args…` in `dir` and returns its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    cae().args(args).current_dir(dir).output().expect("run cae")
}

/// Trains a one-epoch run on 64 images of `data` into `dir/out` (for tests that need a run).
pub fn train_tiny_run(dir: &Path, data: &str, out: &str) {
    ok(&run(
        dir,
        &[
            "train", "--data", data, "--limit", "64", "--epochs", "1", "--out", out,
        ],
    ));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

/// Asserts a clean failure: non-zero exit, no panic or backtrace, and exactly one error line
/// containing `needle`.
pub fn fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stdout: {}",
        stdout(o)
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let error_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "expected one error line, got: {err}");
    assert!(
        error_lines[0].contains(needle),
        "error line lacks {needle:?}: {err}"
    );
}

/// The committed fixture: the first 500 digits of the shared MNIST subset.
pub fn mnist_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cae/tests/fixtures/mnist-small/mnist500-images-idx3-ubyte.gz")
}

pub fn mnist_arg() -> String {
    mnist_fixture().display().to_string()
}

/// Parses the JSON object a `--json` command printed.
pub fn json(o: &Output) -> serde_json::Value {
    let out = ok(o);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
