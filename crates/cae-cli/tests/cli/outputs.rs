//! Output paths (`cae::output`): no command writes over a run's own files, ever; none writes
//! over an existing file or into a non-empty folder unless given `--force`, and even then the
//! files it does not write stay. One test per command, plus the temporary files of killed
//! writes, which the next write into the same folder sweeps away (never a live writer's).

use crate::util::*;
use std::path::Path;

/// A one-epoch run in `d/run` with a fitted threshold.
fn run_with_threshold(d: &Dir) {
    train_tiny_run(&d.path, &mnist_arg(), "run");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--value", "0.05"],
    ));
}

/// Every file of the run, with its bytes: to show that a refused command touched none.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A folder of the user's files named like run artifacts.
fn users_folder(d: &Dir, name: &str) -> Vec<(String, Vec<u8>)> {
    for f in [
        "metrics.csv",
        "summary.json",
        "loss.png",
        "recon/epoch-001.png",
    ] {
        d.write(&format!("{name}/{f}"), format!("the user's {f}").as_bytes());
    }
    snapshot(&d.join(name))
}

#[test]
fn train_out_into_a_non_empty_folder_is_refused_and_the_users_files_stay() {
    let d = Dir::new("out-train");
    let before = users_folder(&d, "mine");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--out",
            "mine",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let o = cae().args(args(&[])).current_dir(&d.path).output().unwrap();
    fails_with(&o, "mine: already holds files; pass --force");
    // --force shares a folder with other files, but never replaces one a run writes.
    let o = cae()
        .args(args(&["--force"]))
        .current_dir(&d.path)
        .output()
        .unwrap();
    fails_with(&o, "holds loss.png, which a new run would write over");
    assert_eq!(snapshot(&d.join("mine")), before);
    // A folder with other files only: --force trains there and keeps them.
    d.write("notes/todo.txt", b"mine");
    let o = cae()
        .args([
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--out",
            "notes",
        ])
        .current_dir(&d.path)
        .output()
        .unwrap();
    fails_with(&o, "already holds files");
    let o = cae()
        .args([
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--out",
            "notes",
            "--force",
        ])
        .current_dir(&d.path)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(std::fs::read(d.join("notes/todo.txt")).unwrap(), b"mine");
    assert!(d.join("notes/best.bpk").is_file());
    // An existing run stays refused with --force too.
    let o = cae()
        .args([
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--out",
            "notes",
            "--force",
        ])
        .current_dir(&d.path)
        .output()
        .unwrap();
    fails_with(&o, "already holds a run");
}

#[test]
fn export_over_the_runs_weights_is_refused_even_with_force() {
    let d = Dir::new("out-export");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let before = snapshot(&d.join("run"));
    for target in [
        "run/best.bpk",
        "run/last.bpk",
        "run/checkpoint.bin",
        "run/config.toml",
    ] {
        for force in [false, true] {
            let mut args = vec!["export", "run", "-o", target];
            if force {
                args.push("--force");
            }
            fails_with(
                &run(&d.path, &args),
                "no command writes over a run's own files",
            );
        }
    }
    assert_eq!(snapshot(&d.join("run")), before);
    ok(&run(&d.path, &["export", "run", "-o", "m.safetensors"]));
    fails_with(
        &run(&d.path, &["export", "run", "-o", "m.safetensors"]),
        "m.safetensors: already exists; pass --force",
    );
    ok(&run(
        &d.path,
        &["export", "run", "-o", "m.safetensors", "--force"],
    ));
    // A file inside the run that is not one of its own is fine.
    ok(&run(
        &d.path,
        &["export", "run", "-o", "run/model.safetensors"],
    ));
}

#[test]
fn reconstruct_over_the_checkpoint_is_refused_even_with_force() {
    let d = Dir::new("out-reconstruct");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let before = snapshot(&d.join("run"));
    let data = mnist_arg();
    for target in [
        "run/checkpoint.bin",
        "run/loss.png",
        "run/recon/epoch-001.png",
        "run/recon/new.png",
    ] {
        let o = run(
            &d.path,
            &[
                "reconstruct",
                "run",
                "--data",
                &data,
                "-o",
                target,
                "--force",
            ],
        );
        fails_with(&o, "no command writes over a run's own files");
    }
    let o = run(
        &d.path,
        &[
            "reconstruct",
            "run",
            "--data",
            &data,
            "-o",
            "g.png",
            "--npy",
            "run/best.bpk",
        ],
    );
    fails_with(&o, "is best.bpk of the run");
    assert!(!d.join("g.png").exists(), "checks come before any output");
    assert_eq!(snapshot(&d.join("run")), before);
    ok(&run(
        &d.path,
        &[
            "reconstruct",
            "run",
            "--data",
            &data,
            "-o",
            "g.png",
            "--npy",
            "g.npy",
        ],
    ));
    fails_with(
        &run(
            &d.path,
            &["reconstruct", "run", "--data", &data, "-o", "g.png"],
        ),
        "g.png: already exists; pass --force",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "reconstruct",
                "run",
                "--data",
                &data,
                "-o",
                "h.png",
                "--npy",
                "g.npy",
            ],
        ),
        "g.npy: already exists",
    );
    ok(&run(
        &d.path,
        &[
            "reconstruct",
            "run",
            "--data",
            &data,
            "-o",
            "g.png",
            "--force",
        ],
    ));
}

#[test]
fn encode_over_existing_codes_or_labels_is_refused_without_force() {
    let d = Dir::new("out-encode");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let data = mnist_arg();
    fails_with(
        &run(
            &d.path,
            &["encode", "run", "--data", &data, "-o", "run/metrics.csv"],
        ),
        "is metrics.csv of the run",
    );
    d.write("c_labels.npy", b"the user's labels");
    fails_with(
        &run(&d.path, &["encode", "run", "--data", &data, "-o", "c.npy"]),
        "c_labels.npy: already exists",
    );
    assert!(!d.join("c.npy").exists());
    ok(&run(
        &d.path,
        &["encode", "run", "--data", &data, "-o", "c.npy", "--force"],
    ));
    fails_with(
        &run(&d.path, &["encode", "run", "--data", &data, "-o", "c.npy"]),
        "c.npy: already exists",
    );
}

#[test]
fn denoise_into_a_non_empty_folder_is_refused_without_force_and_other_files_stay() {
    let d = Dir::new("out-denoise");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    image::GrayImage::from_fn(28, 28, |x, _| image::Luma([(x * 9) as u8]))
        .save(d.join("digit.png"))
        .unwrap();
    d.write("out/notes.txt", b"mine");
    fails_with(
        &run(&d.path, &["denoise", "run", "digit.png", "-o", "out"]),
        "out: already holds files; pass --force",
    );
    ok(&run(
        &d.path,
        &["denoise", "run", "digit.png", "-o", "out", "--force"],
    ));
    assert!(d.join("out/digit.png").is_file());
    assert_eq!(std::fs::read(d.join("out/notes.txt")).unwrap(), b"mine");
    fails_with(
        &run(
            &d.path,
            &["denoise", "run", "digit.png", "-o", "run/recon", "--force"],
        ),
        "no command writes over a run's own files",
    );
    // An input named like an artifact cannot land on the run's file either.
    std::fs::copy(d.join("digit.png"), d.join("loss.png")).unwrap();
    let before = snapshot(&d.join("run"));
    fails_with(
        &run(
            &d.path,
            &["denoise", "run", "loss.png", "-o", "run", "--force"],
        ),
        "is loss.png of the run",
    );
    assert_eq!(snapshot(&d.join("run")), before);
    // The benchmark's --grid follows the file rule.
    d.write("grid.png", b"mine");
    fails_with(
        &run(
            &d.path,
            &[
                "denoise",
                "run",
                "--data",
                &mnist_arg(),
                "--limit",
                "8",
                "--noise",
                "gaussian:0.3",
                "--grid",
                "grid.png",
            ],
        ),
        "grid.png: already exists",
    );
}

#[test]
fn anomaly_score_and_eval_outputs_follow_the_same_rules() {
    let d = Dir::new("out-anomaly");
    run_with_threshold(&d);
    let data = mnist_arg();
    let before = snapshot(&d.join("run"));
    let score = |extra: &[&str]| {
        let mut a = vec![
            "anomaly",
            "score",
            "run",
            "--data",
            data.as_str(),
            "--limit",
            "8",
            "--normal-class",
            "0",
        ];
        a.extend_from_slice(extra);
        run(&d.path, &a)
    };
    fails_with(
        &score(&["-o", "run/recon"]),
        "no command writes over a run's own files",
    );
    fails_with(
        &score(&["--sheet", "run/threshold.json", "--force"]),
        "is threshold.json of the run",
    );
    assert_eq!(snapshot(&d.join("run")), before);
    ok(&score(&["-o", "scored", "--sheet", "sheet.png"]));
    fails_with(
        &score(&["-o", "scored"]),
        "scored: already holds files; pass --force",
    );
    fails_with(
        &score(&["--sheet", "sheet.png"]),
        "sheet.png: already exists",
    );
    ok(&score(&["-o", "scored", "--sheet", "sheet.png", "--force"]));

    let eval = |extra: &[&str]| {
        let mut a = vec![
            "anomaly",
            "eval",
            "run",
            "--data",
            data.as_str(),
            "--limit",
            "40",
            "--normal-class",
            "1",
            "--no-baseline",
        ];
        a.extend_from_slice(extra);
        run(&d.path, &a)
    };
    d.write("ev/notes.txt", b"mine");
    fails_with(
        &eval(&["-o", "ev"]),
        "ev: already holds files; pass --force",
    );
    ok(&eval(&["-o", "ev", "--force"]));
    assert!(d.join("ev/roc.png").is_file());
    assert_eq!(std::fs::read(d.join("ev/notes.txt")).unwrap(), b"mine");
    // A folder of outputs inside the run (`-o RUN/eval`) is fine.
    ok(&eval(&["-o", "run/eval"]));
}

#[test]
fn filters_patches_and_data_commands_refuse_existing_outputs_without_force() {
    let d = Dir::new("out-misc");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    fails_with(
        &run(
            &d.path,
            &["filters", "run", "-o", "run/loss.png", "--force"],
        ),
        "is loss.png of the run",
    );
    ok(&run(&d.path, &["filters", "run", "-o", "f.png"]));
    fails_with(
        &run(&d.path, &["filters", "run", "-o", "f.png"]),
        "f.png: already exists",
    );
    ok(&run(&d.path, &["filters", "run", "-o", "f.png", "--force"]));

    image::GrayImage::from_fn(64, 64, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]))
        .save(d.join("photo.png"))
        .unwrap();
    ok(&run(
        &d.path,
        &["patches", "photo.png", "--side", "16", "-o", "p.npy"],
    ));
    fails_with(
        &run(
            &d.path,
            &["patches", "photo.png", "--side", "16", "-o", "p.npy"],
        ),
        "p.npy: already exists",
    );
    ok(&run(
        &d.path,
        &[
            "patches",
            "photo.png",
            "--side",
            "16",
            "-o",
            "p.npy",
            "--force",
        ],
    ));

    ok(&run(
        &d.path,
        &["data", "make-labels", "--counts", "2,2", "-o", "l.npy"],
    ));
    fails_with(
        &run(
            &d.path,
            &["data", "make-labels", "--counts", "2,2", "-o", "l.npy"],
        ),
        "l.npy: already exists",
    );
    ok(&run(
        &d.path,
        &[
            "data",
            "make-labels",
            "--counts",
            "2,2",
            "-o",
            "l.npy",
            "--force",
        ],
    ));

    let defects = |extra: &[&str]| {
        let mut a = vec![
            "data",
            "make-defects",
            "photo.png",
            "-o",
            "mv",
            "--patch",
            "16",
            "--train",
            "2",
            "--test-good",
            "1",
            "--per-kind",
            "1",
        ];
        a.extend_from_slice(extra);
        run(&d.path, &a)
    };
    d.write("mv/notes.txt", b"mine");
    fails_with(&defects(&[]), "mv: already holds files; pass --force");
    ok(&defects(&["--force"]));
    assert_eq!(std::fs::read(d.join("mv/notes.txt")).unwrap(), b"mine");
    assert!(d.join("mv/defects.json").is_file());
}

#[test]
fn import_and_demo_never_make_a_run_over_a_run_or_the_users_files() {
    let d = Dir::new("out-import");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    ok(&run(&d.path, &["export", "run", "-o", "m.safetensors"]));
    let before = snapshot(&d.join("run"));
    fails_with(
        &run(
            &d.path,
            &["import", "m.safetensors", "-o", "run", "--force"],
        ),
        "already holds a run",
    );
    assert_eq!(snapshot(&d.join("run")), before);
    users_folder(&d, "mine");
    fails_with(
        &run(&d.path, &["import", "m.safetensors", "-o", "mine"]),
        "already holds files",
    );
    d.write("mine2/best.bpk", b"the user's");
    fails_with(
        &run(
            &d.path,
            &["import", "m.safetensors", "-o", "mine2", "--force"],
        ),
        "holds best.bpk, which a new run would write over",
    );
    // The demo refuses before it trains.
    fails_with(
        &run(&d.path, &["demo", "-o", "mine"]),
        "already holds files",
    );
    fails_with(
        &run(&d.path, &["demo", "-o", "run", "--force"]),
        "already holds a run",
    );
}

/// The PID of a process that ran and is gone.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn killed_exports_temp_files_are_swept_by_the_next_write_but_a_live_writers_stay() {
    let d = Dir::new("out-temps");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    // What a killed `cae export -o m.safetensors` leaves, and a write in progress right now
    // (this test process is alive).
    let stale = format!(".m.safetensors.cae-tmp-{}", dead_pid());
    let live = format!(".m.safetensors.cae-tmp-{}", std::process::id());
    // Look-alikes of the user's are never touched.
    let users = [".m.safetensors.tmp-1", "m.cae-tmp-1", ".cae-tmp-1"];
    for name in [stale.as_str(), live.as_str()].into_iter().chain(users) {
        d.write(&format!("out/{name}"), b"half a file");
    }
    ok(&run(&d.path, &["export", "run", "-o", "out/m.safetensors"]));
    assert!(
        !d.join("out").join(&stale).exists(),
        "the dead writer's temp file stayed"
    );
    assert!(
        d.join("out").join(&live).exists(),
        "a live writer's temp file was removed"
    );
    for name in users {
        assert!(d.join("out").join(name).exists(), "{name} was removed");
    }
    // The same inside a run, on resume.
    let stale = format!(".best.bpk.cae-tmp-{}", dead_pid());
    d.write(&format!("run/{stale}"), b"half");
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "2"],
    ));
    assert!(!d.join("run").join(&stale).exists());
}
