//! Crash safety: `cae train` is killed with SIGKILL again and again at seeded random moments —
//! while loading, mid-epoch, and while it writes its artifacts and checkpoint (a tiny model on
//! few images checkpoints every fraction of a second) — and continued with `--resume` each time.
//! After every kill the run directory must hold a checkpoint that loads (or none yet, when no
//! epoch had finished); at the end the run must equal an uninterrupted one: same losses, same
//! weights bit for bit (compared as tensors), and no temporary files left behind. A streamed
//! run with seeded augmentation is held to the same.

use crate::util::*;
use cae::interop::{StateDict, StateTensor};
use cae::train::Checkpoint;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Kills before the run may finish.
const KILLS: usize = 40;

/// SplitMix64: a seeded stream of delays, so a failure can be replayed.
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below
    }
}

/// The arguments of a new run on `data` (96 images) into the folder given last.
fn new_run_args<'a>(
    data: &'a str,
    epochs: usize,
    extra: &'a [&'a str],
) -> impl Fn(&str) -> Vec<String> + 'a {
    move |out| {
        let epochs = epochs.to_string();
        let mut args: Vec<String> = [
            "train",
            "--data",
            data,
            "--limit",
            "96",
            // ~15-30 ms an epoch: long enough (12-24 s) that every kill lands before the end
            // even on an idle machine (400 epochs were used up after 31-35 of the 40 kills).
            "--epochs",
            &epochs,
            "--batch-size",
            "16",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        args.extend(["--out".to_string(), out.to_string()]);
        args
    }
}

/// epoch, train_loss, val_loss of every row of `metrics.csv`.
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect()
}

/// Names of temporary files (`.NAME.cae-tmp-PID`) in the run and its `recon/` folder.
fn temp_files(run: &Path) -> Vec<String> {
    [run.to_path_buf(), run.join("recon")]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".cae-tmp-"))
        .collect()
}

/// The `best` or `last` weights of `run` as exported tensors: the `.bpk` bytes themselves hold
/// Burn's random parameter ids, which differ between any two runs.
fn tensors(d: &Dir, run: &str, weights: &str) -> BTreeMap<String, StateTensor> {
    let file = format!("{run}-{weights}.safetensors");
    ok(&cae()
        .args(["export", run, "--weights", weights, "-o", &file])
        .current_dir(&d.path)
        .output()
        .unwrap());
    StateDict::read(&d.join(&file)).unwrap().0.tensors
}

#[test]
fn sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run() {
    let d = Dir::new("crash");
    kill_and_resume_until_done(&d, &new_run_args(&mnist_arg(), 800, &[]), KILLS);
}

/// The same promise for a streamed run with seeded augmentation: its batches are decoded from
/// files and transformed on the helper thread, and a resume must redraw the same ones.
#[test]
fn sigkill_of_an_augmented_streamed_run_then_resume_matches_an_uninterrupted_run() {
    let d = Dir::new("crash-stream");
    for i in 0..96 {
        d.write(&format!("digits/d{i:03}.png"), &crate::serve::digit_png(i));
    }
    let data = d.join("digits").display().to_string();
    let extra = ["--stream", "--augment", "flip,rot90"];
    kill_and_resume_until_done(&d, &new_run_args(&data, 400, &extra), STREAMED_KILLS);
}

/// Kills of the streamed run (each epoch decodes its PNGs, so it is slower and fewer kills
/// fit before it ends).
const STREAMED_KILLS: usize = 15;

/// Trains `args` (with `--out OUT` last) once uninterrupted into `full`, then into `killed`
/// killed `kills` times at seeded moments and resumed after each, and compares the two.
fn kill_and_resume_until_done(d: &Dir, args: &dyn Fn(&str) -> Vec<String>, kills_wanted: usize) {
    ok(&cae()
        .args(args("full"))
        .current_dir(&d.path)
        .output()
        .unwrap());

    let killed = d.join("killed");
    let log = d.join("stderr.log");
    let mut delays = Delays(0x00c0_ffee);
    let (mut kills, mut during_writes, mut before_checkpoint) = (0, 0, 0);
    let started = Instant::now();
    loop {
        // A kill before config.toml was written leaves nothing to resume: start again.
        let args = if killed.join("config.toml").is_file() {
            vec!["train".into(), "--resume".into(), "killed".into()]
        } else {
            args("killed")
        };
        let mut child = cae()
            .args(&args)
            .current_dir(&d.path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let finished = if kills < kills_wanted {
            std::thread::sleep(Duration::from_millis(10 + delays.next_ms(400)));
            child.try_wait().unwrap()
        } else {
            Some(child.wait().unwrap())
        };
        if let Some(status) = finished {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                status.success(),
                "{args:?} failed after {kills} kills: {err}"
            );
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if !temp_files(&killed).is_empty() {
            during_writes += 1;
        }
        if killed.join("config.toml").is_file() {
            let ck = killed.join("checkpoint.bin");
            if ck.is_file() {
                if let Err(e) = Checkpoint::load(&ck) {
                    panic!("after kill {kills}: {e}");
                }
            } else {
                before_checkpoint += 1;
            }
        }
    }
    eprintln!(
        "{kills} kills in {:.1} s: {during_writes} left a write unfinished, {before_checkpoint} \
         came before the first checkpoint",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        kills, kills_wanted,
        "the run finished before all kills were made"
    );
    assert_eq!(losses(&killed), losses(&d.join("full")));
    for weights in ["best", "last"] {
        assert!(
            tensors(d, "killed", weights) == tensors(d, "full", weights),
            "the {weights} weights differ from the uninterrupted run's"
        );
    }
    assert_eq!(temp_files(&killed), Vec::<String>::new());
}
