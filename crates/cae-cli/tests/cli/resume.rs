//! Kill -9 in the middle of training, then `--resume`: the run finishes and its metrics are
//! those of an uninterrupted run with the same seed.

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
