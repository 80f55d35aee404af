//! The run lock (`RUN/.lock`): one process writes into a run at a time. A second `--resume` of
//! a run that is training — before the lock, it swept the first one's temporary file away
//! mid-write and the first died — is refused with one line naming the holder's PID, and so is
//! a threshold fit; the first goes on undisturbed.

use crate::util::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Starts `cae train --resume run --epochs N` and waits until it holds the run's lock.
fn resume_holding_the_lock(d: &Dir, epochs: usize) -> Child {
    let child = cae()
        .args(["train", "--resume", "run", "--epochs", &epochs.to_string()])
        .current_dir(&d.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cae train --resume");
    let holder = format!("{} resuming training", child.id());
    let started = Instant::now();
    while std::fs::read_to_string(d.join("run/.lock")).map_or(true, |t| t.trim() != holder) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the resume never took the lock"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

#[test]
fn two_resumes_side_by_side_the_second_is_refused_with_the_pid_and_the_first_never_fails() {
    let d = Dir::new("lock-resume");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let mut epochs = 1;
    for trial in 0..20 {
        // Enough epochs (~20 ms each) that the first is still training when the second starts.
        epochs += 25;
        let first = resume_holding_the_lock(&d, epochs);
        let second = run(
            &d.path,
            &["train", "--resume", "run", "--epochs", &epochs.to_string()],
        );
        fails_with(
            &second,
            &format!(
                "run: in use by another cae process (PID {}, resuming training)",
                first.id()
            ),
        );
        let o = first.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "trial {trial}: the first resume failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rows = std::fs::read_to_string(d.join("run/metrics.csv"))
            .unwrap()
            .lines()
            .count();
        assert_eq!(rows, epochs + 1, "trial {trial}");
    }
    cae::train::Checkpoint::load(&d.join("run/checkpoint.bin")).expect("the checkpoint loads");
}

#[test]
fn a_threshold_fit_while_the_run_trains_is_refused_with_the_pid() {
    let d = Dir::new("lock-threshold");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let first = resume_holding_the_lock(&d, 40);
    let o = run(&d.path, &["anomaly", "threshold", "run", "--value", "0.1"]);
    fails_with(
        &o,
        &format!("in use by another cae process (PID {}", first.id()),
    );
    assert!(!d.join("run/threshold.json").exists());
    ok(&first.wait_with_output().unwrap());
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--value", "0.1"],
    ));
    // Re-fitting replaces the run's threshold, and says so.
    let o = run(&d.path, &["anomaly", "threshold", "run", "--value", "0.2"]);
    ok(&o);
    assert!(
        stderr(&o).contains("replaced the earlier threshold 0.100000"),
        "{}",
        stderr(&o)
    );
}
