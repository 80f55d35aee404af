//! Kill -9 in the middle of training, then `--resume`: the run finishes and its metrics are
//! those of an uninterrupted run with the same seed. Ctrl-C and SIGTERM stop at a step, say
//! how to continue and exit 130.

use crate::util::*;
use std::time::{Duration, Instant};

fn losses(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn kill_and_resume_matches_an_uninterrupted_run() {
    let d = Dir::new("resume");
    let data = mnist_arg();
    let args = |out: &'static str| -> Vec<String> {
        [
            "train",
            "--data",
            &data,
            "--epochs",
            "8",
            "--batch-size",
            "8",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    ok(&cae()
        .args(args("full"))
        .current_dir(&d.path)
        .output()
        .unwrap());

    let mut child = cae()
        .args(args("killed"))
        .current_dir(&d.path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once at least two epochs are checkpointed, mid-way through a later one.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = std::fs::read_to_string(d.join("killed/metrics.csv"))
            .map(|m| m.lines().count() - 1)
            .unwrap_or(0);
        if done >= 2 && d.join("killed/checkpoint.bin").is_file() {
            break;
        }
        assert!(Instant::now() < deadline, "training made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "training finished before it was killed; make it longer"
    );
    let partial = losses(&d.join("killed/metrics.csv")).len() - 1;
    assert!(partial < 8, "all epochs were done before the kill");

    ok(&run(&d.path, &["train", "--resume", "killed"]));
    assert_eq!(
        losses(&d.join("killed/metrics.csv")),
        losses(&d.join("full/metrics.csv"))
    );
}

#[test]
fn resume_can_extend_a_finished_run() {
    let d = Dir::new("resume-extend");
    ok(&run(
        &d.path,
        &[
            "train",
            "--data",
            &mnist_arg(),
            "--limit",
            "128",
            "--epochs",
            "1",
            "--out",
            "run",
        ],
    ));
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "2"],
    ));
    assert_eq!(losses(&d.join("run/metrics.csv")).len(), 3);
}

#[test]
fn resume_of_a_folder_that_is_not_a_run_fails() {
    let d = Dir::new("resume-none");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    fails_with(
        &run(&d.path, &["train", "--resume", "empty"]),
        "not a cae run directory",
    );
}

#[test]
fn corrupt_checkpoint_is_reported() {
    let d = Dir::new("resume-corrupt");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let ck = d.join("run/checkpoint.bin");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &run(&d.path, &["train", "--resume", "run", "--epochs", "2"]),
        "corrupt checkpoint",
    );
}

/// Starts a long training, waits for its first finished epoch, sends `signal`, and returns the
/// exit code and stderr.
fn train_then_signal(d: &Dir, out: &str, signal: i32) -> (Option<i32>, String) {
    let child = cae()
        .args([
            "train",
            "--data",
            &mnist_arg(),
            "--epochs",
            "100000",
            "--out",
            out,
        ])
        .current_dir(&d.path)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn cae train");
    let metrics = d.join(&format!("{out}/metrics.csv"));
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 2 {
        assert!(started.elapsed().as_secs() < 120, "no epoch finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child process by its id.
    unsafe { libc::kill(child.id() as i32, signal) };
    let o = child.wait_with_output().expect("wait for cae train");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn ctrl_c_and_sigterm_stop_at_a_step_say_how_to_continue_and_exit_130() {
    let d = Dir::new("resume-signal");
    for (signal, out) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let (code, err) = train_then_signal(&d, out, signal);
        assert_eq!(code, Some(130), "{out}: {err}");
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        assert!(
            last.starts_with("stopped after epoch")
                && last.ends_with(&format!("continue with: cae train --resume {out}")),
            "{out}: {last}"
        );
        assert!(
            !err.contains("error:") && !err.contains("panicked"),
            "{err}"
        );
        let done: usize = last
            .trim_start_matches("stopped after epoch ")
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // The checkpoint is intact: resuming continues from the epoch it names.
        let more = (done + 1).to_string();
        ok(&run(
            &d.path,
            &["train", "--resume", out, "--epochs", &more],
        ));
        let lines = std::fs::read_to_string(d.join(&format!("{out}/metrics.csv")))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, done + 2, "{out}");
    }
}

#[test]
fn resume_with_epochs_0_fails_without_saving_it_and_a_plain_resume_still_works() {
    let d = Dir::new("resume-epochs-0");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let config = std::fs::read(d.join("run/config.toml")).unwrap();
    fails_with(
        &run(&d.path, &["train", "--resume", "run", "--epochs", "0"]),
        "epochs must be at least 1",
    );
    // Nor an epoch budget below what the run has done, nor a bad --patience.
    fails_with(
        &run(&d.path, &["train", "--resume", "run", "--patience", "0"]),
        "patience must be at least 1",
    );
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "2"],
    ));
    let config = String::from_utf8(config)
        .unwrap()
        .replace("epochs = 1", "epochs = 2");
    assert_eq!(
        std::fs::read_to_string(d.join("run/config.toml")).unwrap(),
        config
    );
    let before = std::fs::read(d.join("run/config.toml")).unwrap();
    fails_with(
        &run(&d.path, &["train", "--resume", "run", "--epochs", "1"]),
        "has already trained 2 epochs",
    );
    assert_eq!(std::fs::read(d.join("run/config.toml")).unwrap(), before);
    ok(&run(&d.path, &["train", "--resume", "run"]));
}

#[test]
fn resume_refuses_flags_it_cannot_change_and_records_those_it_can() {
    let d = Dir::new("resume-flags");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let config = std::fs::read(d.join("run/config.toml")).unwrap();
    let o = run(
        &d.path,
        &[
            "train",
            "--resume",
            "run",
            "--lr",
            "5",
            "--batch-size",
            "0",
            "--data",
            "/nonexistent",
            "--resize",
            "14x14",
        ],
    );
    fails_with(
        &o,
        "--data, --resize, --batch-size, --lr cannot change on --resume",
    );
    for flag in [
        ["--seed", "7"],
        ["--loss", "l1"],
        ["--noise", "gaussian:0.1"],
        ["--limit", "10"],
    ] {
        let o = run(&d.path, &["train", "--resume", "run", flag[0], flag[1]]);
        fails_with(&o, &format!("{} cannot change on --resume", flag[0]));
    }
    fails_with(
        &run(&d.path, &["train", "--resume", "run", "--stacked"]),
        "--stacked cannot change",
    );
    assert_eq!(std::fs::read(d.join("run/config.toml")).unwrap(), config);
    // The run's own values may be repeated; --epochs and --patience are applied and recorded.
    let o = run(
        &d.path,
        &[
            "train",
            "--resume",
            "run",
            "--data",
            &mnist_arg(),
            "--limit",
            "64",
            "--lr",
            "0.001",
            "--epochs",
            "3",
            "--patience",
            "5",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(ok(&o).trim()).unwrap();
    assert_eq!(v["outcome"]["epochs"], 3);
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(
        config.contains("epochs = 3") && config.contains("patience = 5"),
        "{config}"
    );
}

/// An uncompressed IDX file of `n` 28×28 images whose pixels follow from `seed`.
fn idx_images(n: usize, seed: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for v in [n as u32, 28, 28] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    let mut x = seed;
    bytes.extend((0..n * 784).map(|_| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (x >> 24) as u8
    }));
    bytes
}

#[test]
fn resume_warns_once_when_the_data_was_replaced_by_other_images_of_the_same_shape() {
    let d = Dir::new("resume-fingerprint");
    d.write("digits-idx3-ubyte", &idx_images(40, 1));
    ok(&run(
        &d.path,
        &[
            "train",
            "--data",
            "digits-idx3-ubyte",
            "--epochs",
            "1",
            "--out",
            "run",
        ],
    ));
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(
        config.contains("[data.fingerprint]") && config.contains("images = 40"),
        "{config}"
    );
    // Same data: no warning.
    let o = run(&d.path, &["train", "--resume", "run", "--epochs", "2"]);
    ok(&o);
    assert!(!stderr(&o).contains("changed since"), "{}", stderr(&o));
    // Same file name, size and shape; other images.
    d.write("digits-idx3-ubyte", &idx_images(40, 2));
    let o = run(&d.path, &["train", "--resume", "run", "--epochs", "3"]);
    ok(&o);
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("changed since"))
        .map(String::from)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("digits-idx3-ubyte changed since the run started")
            && warnings[0].contains("same number and shape of images (40 of 1x28x28)"),
        "{warnings:?}"
    );
    // Fewer images: said with both counts.
    d.write("digits-idx3-ubyte", &idx_images(30, 2));
    let o = run(&d.path, &["train", "--resume", "run", "--epochs", "4"]);
    ok(&o);
    assert!(
        stderr(&o).contains("30 images of 1x28x28 (the run was trained on 40"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_run_from_before_fingerprints_still_resumes_and_gets_one() {
    let d = Dir::new("resume-old-run");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let path = d.join("run/config.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let start = config.find("[data.fingerprint]").expect("a fingerprint");
    let end = config[start..]
        .find("\n\n")
        .map_or(config.len(), |e| start + e + 1);
    let old = format!("{}{}", &config[..start], &config[end..]);
    std::fs::write(&path, &old).unwrap();
    let o = run(&d.path, &["train", "--resume", "run", "--epochs", "2"]);
    ok(&o);
    assert!(!stderr(&o).contains("changed since"), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("[data.fingerprint]")
    );
}
