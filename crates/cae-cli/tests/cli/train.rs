//! `cae train`, `eval`, `reconstruct` on real MNIST digits: the loss must fall, the run
//! directory must hold every artifact, and later commands must read it.

use crate::util::*;

#[test]
fn trains_pytorch_small_on_real_digits_and_evaluates() {
    let d = Dir::new("train-mnist");
    let v = json(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "pytorch-small",
            "--data",
            &mnist_arg(),
            "--epochs",
            "10",
            "--batch-size",
            "16",
            "--out",
            "run",
            "--json",
        ],
    ));
    let val = v["outcome"]["last"]["val_loss"].as_f64().unwrap();
    let first_train = v["outcome"]["last"]["train_loss"].as_f64().unwrap();
    assert!(
        val < 0.02,
        "validation MSE {val} should fall below 0.02 (predicting zeros gives ~0.10)"
    );
    assert!(first_train < 0.03, "{first_train}");
    for f in [
        "config.toml",
        "best.bpk",
        "last.bpk",
        "checkpoint.bin",
        "metrics.csv",
        "loss.png",
        "summary.json",
        "recon/epoch-010.png",
    ] {
        assert!(d.join("run").join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 11, "{metrics}");
    assert!(
        metrics.starts_with("epoch,train_loss,val_loss,seconds"),
        "{metrics}"
    );

    let q = json(&run(
        &d.path,
        &["eval", "run", "--data", &mnist_arg(), "--json"],
    ));
    assert_eq!(q["images"], 500);
    assert!(q["psnr"].as_f64().unwrap() > 18.0, "{q}");
    assert!(q["ssim"].as_f64().unwrap() > 0.6, "{q}");

    let r = json(&run(
        &d.path,
        &[
            "reconstruct",
            "run",
            "--data",
            &mnist_arg(),
            "-o",
            "grid.png",
            "-n",
            "16",
            "--json",
        ],
    ));
    assert_eq!(r["images"], 16);
    let grid = image::open(d.join("grid.png")).unwrap();
    // 2 rows of 8 originals + 2 of reconstructions, 28 px scaled by 4
    assert!(
        grid.width() >= 8 * 112 && grid.height() >= 4 * 112,
        "{}x{}",
        grid.width(),
        grid.height()
    );
}

#[test]
fn same_seed_gives_same_metrics() {
    let d = Dir::new("train-seed");
    for out in ["a", "b"] {
        ok(&run(
            &d.path,
            &[
                "train",
                "--data",
                &mnist_arg(),
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--out",
                out,
            ],
        ));
    }
    let a = std::fs::read_to_string(d.join("a/metrics.csv")).unwrap();
    let b = std::fs::read_to_string(d.join("b/metrics.csv")).unwrap();
    let losses = |s: &str| {
        s.lines()
            .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn refuses_to_overwrite_an_existing_run() {
    let d = Dir::new("train-exists");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let before = std::fs::read(d.join("run/best.bpk")).unwrap();
    fails_with(
        &run(
            &d.path,
            &[
                "train",
                "--data",
                &mnist_arg(),
                "--epochs",
                "1",
                "--out",
                "run",
            ],
        ),
        "already holds a run",
    );
    assert_eq!(
        std::fs::read(d.join("run/best.bpk")).unwrap(),
        before,
        "existing weights were touched"
    );
}

#[test]
fn diverging_training_stops_with_a_clear_message() {
    let d = Dir::new("train-nan");
    let o = run(
        &d.path,
        // A linear-output model with an absurd learning rate: its outputs overflow.
        &[
            "train",
            "--arch",
            "galeone",
            "--param",
            "n=4",
            "--param",
            "k=1",
            "--data",
            &mnist_arg(),
            "--epochs",
            "2",
            "--lr",
            "1e30",
            "--loss",
            "sse",
            "--out",
            "run",
        ],
    );
    fails_with(&o, "training diverged at epoch 1");
}

#[test]
fn config_file_sets_defaults_and_rejects_unknown_keys() {
    let d = Dir::new("train-config");
    let cfg = format!(
        "arch = \"galeone\"\n[params]\nn = 4\nk = 1\n[data]\nsource = \"{}\"\nlimit = 64\n[train]\nepochs = 1\nloss = \"sse\"\n",
        mnist_arg()
    );
    d.write("run.toml", cfg.as_bytes());
    ok(&run(
        &d.path,
        &["train", "--config", "run.toml", "--out", "run"],
    ));
    let saved = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(
        saved.contains("loss = \"sse\"") && saved.contains("n = 4"),
        "{saved}"
    );
    d.write("bad.toml", b"[train]\nepoch = 3\n");
    fails_with(
        &run(
            &d.path,
            &["train", "--config", "bad.toml", "--data", &mnist_arg()],
        ),
        "unknown field `epoch`",
    );
}

#[test]
fn bce_needs_a_sigmoid_output() {
    let d = Dir::new("train-bce");
    d.write(
        "lin.toml",
        b"name = \"lin\"\n[[encoder]]\ntype = \"conv\"\nfilters = 2\nkernel = 3\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n",
    );
    let o = run(
        &d.path,
        &[
            "train",
            "--arch",
            "lin.toml",
            "--data",
            &mnist_arg(),
            "--loss",
            "bce",
            "--out",
            "run",
        ],
    );
    fails_with(&o, "loss bce needs outputs in (0, 1)");
}

#[test]
fn demo_runs_on_builtin_shapes() {
    let d = Dir::new("demo");
    let v = json(&run(&d.path, &["demo", "--epochs", "1", "--json"]));
    assert_eq!(v["run"], "runs/demo");
    assert!(d.join("runs/demo/reconstruction.png").is_file());
    assert!(v["test"]["psnr"].as_f64().unwrap() > 10.0, "{v}");
    // a second demo never touches the first
    let v = json(&run(&d.path, &["demo", "--epochs", "1", "--json"]));
    assert_eq!(v["run"], "runs/demo-2");
}

#[test]
fn early_stopping_ends_a_run_that_stops_improving() {
    let d = Dir::new("train-patience");
    // A learning rate of 1e-30 leaves the weights as they are: the validation loss never improves.
    let v = json(&run(
        &d.path,
        &[
            "train",
            "--data",
            &mnist_arg(),
            "--limit",
            "128",
            "--epochs",
            "10",
            "--lr",
            "1e-30",
            "--patience",
            "2",
            "--out",
            "run",
            "--json",
        ],
    ));
    assert_eq!(v["outcome"]["stop"], "early_stopped", "{v}");
    assert_eq!(v["outcome"]["epochs"], 3, "{v}");
    assert_eq!(v["outcome"]["best_epoch"], 1, "{v}");
}

#[test]
fn a_runs_own_config_toml_is_accepted_by_train_config_and_reproduces_the_run() {
    let d = Dir::new("train-own-config");
    ok(&run(
        &d.path,
        &[
            "train",
            "--arch",
            "upsample",
            "--param",
            "code=4",
            "--data",
            &mnist_arg(),
            "--limit",
            "128",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--out",
            "a",
        ],
    ));
    ok(&run(
        &d.path,
        &["train", "--config", "a/config.toml", "--out", "b"],
    ));
    let losses = |run: &str| {
        std::fs::read_to_string(d.join(&format!("{run}/metrics.csv")))
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses("a"), losses("b"));
    // The inline spec has its parameters substituted: an override is refused, not ignored.
    fails_with(
        &run(
            &d.path,
            &[
                "train",
                "--config",
                "a/config.toml",
                "--param",
                "code=2",
                "--out",
                "c",
            ],
        ),
        "parameters substituted already",
    );
}

#[test]
fn keras_denoise_with_mse_warns_that_the_model_collapsed() {
    let d = Dir::new("train-collapse");
    let train = |loss: &str, out: &str| {
        run(
            &d.path,
            &[
                "train",
                "--arch",
                "keras-denoise",
                "--loss",
                loss,
                "--data",
                &mnist_arg(),
                "--epochs",
                "6",
                "--out",
                out,
            ],
        )
    };
    let o = train("mse", "mse");
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("the model has collapsed") && err.contains("use --loss bce"),
        "{err}"
    );
    assert_eq!(err.matches("warning:").count(), 1, "warned once: {err}");
    let o = train("bce", "bce");
    ok(&o);
    assert!(!stderr(&o).contains("collapsed"), "{}", stderr(&o));
}

#[test]
fn later_commands_use_the_weights_the_run_keeps() {
    let d = Dir::new("train-keep");
    let data = mnist_arg();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            data.as_str(),
            "--limit",
            "64",
            "--epochs",
            "1",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        ok(&run(&d.path, &args));
        std::fs::read_to_string(d.join(out).join("config.toml")).unwrap()
    };
    assert!(train("best", &[]).contains("keep = \"best\""));
    assert!(train("last", &["--keep", "last"]).contains("keep = \"last\""));
    // A cosine schedule anneals to the settled model, unless early stopping ends it sooner.
    assert!(train("cosine", &["--schedule", "cosine"]).contains("keep = \"last\""));
    assert!(
        train("stopped", &["--schedule", "cosine", "--patience", "3"]).contains("keep = \"best\"")
    );
    // Without best.bpk a run that keeps its last epoch still evaluates; one that keeps its best
    // says which file is missing.
    for run_dir in ["best", "last"] {
        std::fs::remove_file(d.join(run_dir).join("best.bpk")).unwrap();
    }
    ok(&run(
        &d.path,
        &["eval", "last", "--data", data.as_str(), "--limit", "16"],
    ));
    fails_with(
        &run(
            &d.path,
            &["eval", "best", "--data", data.as_str(), "--limit", "16"],
        ),
        "best.bpk: missing",
    );
    ok(&run(&d.path, &["export", "last", "-o", "last.safetensors"]));
    fails_with(
        &run(&d.path, &["export", "best", "-o", "best.safetensors"]),
        "best.bpk",
    );
    fails_with(
        &run(
            &d.path,
            &[
                "train",
                "--data",
                data.as_str(),
                "--keep",
                "first",
                "--out",
                "x",
            ],
        ),
        "expected best (lowest validation loss) or last",
    );
    let info = ok(&run(&d.path, &["info", "last"]));
    assert!(info.contains("keeps last weights"), "{info}");
}

#[test]
fn a_log_gets_plain_progress_lines_with_an_eta_within_long_epochs() {
    let d = Dir::new("plain-progress");
    // stderr is a pipe here, not a terminal: plain lines, one after every step with 0 seconds.
    let out = cae()
        .args([
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--val-fraction",
            "0",
            "--out",
            "run",
        ])
        .env("CAE_PROGRESS_SECONDS", "0")
        .current_dir(&d.path)
        .output()
        .expect("run cae");
    ok(&out);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" step ")).collect();
    // 64 images in batches of 16: a line after steps 1-3; the last step ends the epoch instead.
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("epoch   1/1  step 1/4  loss "),
        "{err}"
    );
    assert!(lines.iter().all(|l| l.contains(" ETA ")), "{err}");
    assert!(err.contains("epoch   1/1  train loss"), "{err}");
    // The default interval (30 s) prints none in an epoch this short.
    let quiet = run(
        &d.path,
        &[
            "train",
            "--data",
            "builtin:shapes:64",
            "--epochs",
            "1",
            "--val-fraction",
            "0",
            "--out",
            "run2",
        ],
    );
    ok(&quiet);
    assert!(!stderr(&quiet).contains(" step "), "{}", stderr(&quiet));
}

#[test]
fn the_example_run_file_trains_the_inspection_recipe() {
    let d = Dir::new("example-toml");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/inspect.toml");
    // Its own data is ELPV; here the committed digits stand in, at their own size, for a
    // single epoch: the file's other settings are what the run records.
    ok(&run(
        &d.path,
        &[
            "train",
            "--config",
            example,
            "--data",
            &mnist_arg(),
            "--resize",
            "32x32",
            "--limit",
            "64",
            "--epochs",
            "1",
            "--out",
            "run",
        ],
    ));
    let saved = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    for needle in [
        "name = \"inspect\"",
        "normalize = \"median\"",
        "val_fraction = 0.2",
        "synthetic = \"dark,texture,crack@0.5\"",
        "schedule = \"cosine\"",
        "keep = \"last\"",
        "batch_size = 16",
        "epochs = 1",
    ] {
        assert!(saved.contains(needle), "{needle} not in\n{saved}");
    }
}
