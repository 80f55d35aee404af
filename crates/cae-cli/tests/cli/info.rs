//! The small tools around a run: `cae info RUN`, `cae predict RUN IMAGE…`,
//! `cae data export-png SRC -o DIR` and `cae completions SHELL`.

use crate::util::*;

#[test]
fn info_says_what_a_run_is_before_and_after_its_threshold() {
    let d = Dir::new("info");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let text = ok(&run(&d.path, &["info", "run"]));
    for needle in [
        "model: pytorch-small (autoencoder), input 1x28x28, 2633 parameters, code 8x7x7",
        "epochs: 1 of 1; completed, best epoch 1",
        "threshold: none (fit one with `cae anomaly threshold run`)",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    let v = json(&run(&d.path, &["info", "run", "--json"]));
    assert_eq!(v["kind"], "autoencoder");
    assert_eq!(v["epochs_done"], 1);
    assert!(v["last_epoch"]["train_loss"].as_f64().is_some(), "{v}");
    assert_eq!(v["threshold"]["score"]["kind"], "mse");
    assert_eq!(v["config"]["arch"]["name"], "pytorch-small");
    fails_with(
        &run(&d.path, &["info", "nothing-here"]),
        "not a cae run directory",
    );
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    let d = Dir::new("completions");
    let bash = ok(&run(&d.path, &["completions", "bash"]));
    for command in [
        "train",
        "anomaly",
        "serve",
        "info",
        "--resume",
        "--synthetic",
    ] {
        assert!(bash.contains(command), "bash completions lack {command}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(
            !ok(&run(&d.path, &["completions", shell])).is_empty(),
            "{shell}"
        );
    }
    fails_with(
        &run(&d.path, &["completions", "tcsh"]),
        "invalid value 'tcsh'",
    );
}

#[test]
fn export_png_then_predict_gives_one_verdict_line_per_image() {
    let d = Dir::new("predict");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    ok(&run(
        &d.path,
        &[
            "data",
            "export-png",
            &mnist_arg(),
            "-o",
            "pngs",
            "--limit",
            "3",
        ],
    ));
    let mut names: Vec<String> = std::fs::read_dir(d.join("pngs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names[0].starts_with("00000-") && names[0].ends_with(".png"),
        "{names:?}"
    );
    let digit = image::open(d.join("pngs").join(&names[0])).unwrap();
    assert_eq!(
        (digit.width(), digit.height(), digit.color().channel_count()),
        (28, 28, 1)
    );
    // Writing again into the same folder needs --force.
    fails_with(
        &run(
            &d.path,
            &[
                "data",
                "export-png",
                &mnist_arg(),
                "-o",
                "pngs",
                "--limit",
                "3",
            ],
        ),
        "pngs",
    );
    let images: Vec<String> = names.iter().map(|n| format!("pngs/{n}")).collect();
    let mut args = vec!["predict", "run"];
    args.extend(images.iter().map(String::as_str));
    fails_with(&run(&d.path, &args), "cae anomaly threshold");
    ok(&run(
        &d.path,
        &["anomaly", "threshold", "run", "--percentile", "95"],
    ));
    let text = ok(&run(&d.path, &args));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, image) in lines.iter().zip(&images) {
        assert!(line.starts_with(&format!("{image}: ")), "{line}");
        assert!(
            line.contains("normal") || line.contains("ANOMALOUS"),
            "{line}"
        );
    }
    args.push("--json");
    let out = ok(&run(&d.path, &args));
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["score"].as_f64().is_some() && v["anomalous"].is_boolean(),
            "{v}"
        );
    }
    fails_with(
        &run(&d.path, &["predict", "run", "missing.png"]),
        "missing.png: not an image file",
    );
    fails_with(
        &run(&d.path, &["predict", "run", "pngs"]),
        "cae anomaly score RUN --data SRC",
    );
}
