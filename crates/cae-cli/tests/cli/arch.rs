//! `cae arch`: tables, JSON, presets and spec errors.

use crate::util::*;

#[test]
fn arch_table_for_pytorch_small() {
    let d = Dir::new("arch-table");
    let out = ok(&run(
        &d.path,
        &["arch", "pytorch-small", "--input", "1x28x28"],
    ));
    assert!(out.contains("total parameters: 2633"), "{out}");
    assert!(out.contains("bottleneck: 8x7x7 (392 values)"), "{out}");
    assert!(out.contains("compression ratio: 2.00"), "{out}");
}

#[test]
fn arch_json_with_params() {
    let d = Dir::new("arch-json");
    let v = json(&run(
        &d.path,
        &[
            "arch", "galeone", "--param", "n=8", "--param", "k=2", "--input", "3x25x25", "--json",
        ],
    ));
    assert_eq!(v["total_params"], 8 * 3 * 25 + 8 + 3 * 8 * 25 + 3);
    assert_eq!(v["layers"][0]["output"], "8x29x29");
}

#[test]
fn arch_list_names_every_preset() {
    let d = Dir::new("arch-list");
    let out = ok(&run(&d.path, &["arch", "--list"]));
    for p in [
        "galeone",
        "pytorch-small",
        "keras-denoise",
        "dense-latent",
        "upsample",
    ] {
        assert!(out.contains(p), "{p} missing: {out}");
    }
}

#[test]
fn spec_whose_decoder_misses_the_input_is_rejected() {
    let d = Dir::new("arch-bad");
    let spec = d.write(
        "bad.toml",
        b"name = \"bad\"\n[[encoder]]\ntype = \"conv\"\nfilters = 4\nkernel = 5\npadding = \"valid\"\n\
          [[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n",
    );
    let o = run(
        &d.path,
        &["arch", spec.to_str().unwrap(), "--input", "1x28x28"],
    );
    fails_with(&o, "decoder ends at 1x24x24 but the input is 1x28x28");
}

#[test]
fn unknown_preset_and_unknown_param_are_errors() {
    let d = Dir::new("arch-unknown");
    fails_with(
        &run(&d.path, &["arch", "resnet"]),
        "unknown architecture 'resnet'",
    );
    fails_with(
        &run(&d.path, &["arch", "galeone", "--param", "m=3"]),
        "unknown parameter 'm'",
    );
}

#[test]
fn cae_arch_of_a_run_directory_prints_its_architecture() {
    let d = Dir::new("arch-run");
    train_tiny_run(&d.path, &mnist_arg(), "run");
    let out = ok(&run(&d.path, &["arch", "run"]));
    assert!(
        out.contains("architecture pytorch-small on input 1x28x28"),
        "{out}"
    );
    assert!(out.contains("total parameters: 2633"), "{out}");
    // `-o` is `--out` everywhere; `--output` stays as an alias.
    for flag in ["--out", "--output", "-o"] {
        let png = format!("grid{}.png", flag.len());
        ok(&run(
            &d.path,
            &[
                "reconstruct",
                "run",
                "--data",
                &mnist_arg(),
                "-n",
                "4",
                flag,
                &png,
            ],
        ));
        assert!(d.join(&png).is_file(), "{flag}");
    }
}

#[test]
fn a_reader_that_hangs_up_early_is_not_a_panic() {
    // `cae arch … | head -1`: the pipe is closed before the table is written.
    let d = Dir::new("arch-pipe");
    let mut child = cae()
        .args(["arch", "inspect-aligned", "--torch"])
        .current_dir(&d.path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.trim().is_empty(), "{err}");
}
