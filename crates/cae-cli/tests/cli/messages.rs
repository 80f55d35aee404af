//! Parsers and messages through the real binary, with inputs too large or too odd for the
//! committed corpus (they are written at run time): spec expressions that used to overflow the
//! stack, 50 MB values echoed back in errors, error chains that printed the OS text twice, and
//! symbolic links in image folders.

use crate::util::*;
use std::time::{Duration, Instant};

/// A spec whose first layer's `filters` is `value` (a TOML string).
fn spec_with_filters(value: &str) -> String {
    format!(
        "name = \"x\"\ninput = \"1x28x28\"\n[[encoder]]\ntype = \"conv\"\nfilters = \"{value}\"\n\
         kernel = 3\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    )
}

/// Asserts one short error line (at most `max` bytes of stderr) holding `needle`.
fn fails_short(o: &std::process::Output, needle: &str, max: usize) {
    fails_with(o, needle);
    assert!(
        o.stderr.len() <= max,
        "{} bytes of stderr: {}",
        o.stderr.len(),
        String::from_utf8_lossy(&o.stderr[..o.stderr.len().min(400)])
    );
}

#[test]
fn a_40_kb_run_of_minus_signs_or_50k_nested_parentheses_is_an_error_not_a_stack_overflow() {
    let d = Dir::new("msg-deep-expr");
    let minus = format!("${}1", "-".repeat(40_000));
    let parens = format!("${}1{}", "(".repeat(50_000), ")".repeat(50_000));
    d.write("minus.toml", spec_with_filters(&minus).as_bytes());
    d.write("parens.toml", spec_with_filters(&parens).as_bytes());
    // Within the length limit but nested too deeply.
    let nested = format!("${}1{}", "(".repeat(100), ")".repeat(100));
    d.write("nested.toml", spec_with_filters(&nested).as_bytes());
    for (file, needle) in [
        (
            "minus.toml",
            "the expression is 40001 characters long; at most 1000",
        ),
        ("parens.toml", "at most 1000 are accepted"),
        ("nested.toml", "nest deeper than 64 levels"),
    ] {
        let o = run(&d.path, &["arch", file]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", stderr(&o));
        fails_short(&o, needle, 400);
    }
}

#[test]
fn an_error_echoing_a_50_mb_value_is_one_short_line() {
    let d = Dir::new("msg-50mb");
    let huge = "x".repeat(50 << 20);
    let spec = format!(
        "name = \"x\"\ninput = \"1x28x28\"\n[[encoder]]\ntype = \"conv\"\nfilters = 4\n\
         kernel = 3\nactivation = \"{huge}\"\n[[decoder]]\ntype = \"conv\"\nfilters = 1\nkernel = 3\n"
    );
    d.write("act.toml", spec.as_bytes());
    d.write(
        "expr.toml",
        spec_with_filters(&format!("${huge}")).as_bytes(),
    );
    d.write(
        "config.toml",
        format!("arch = \"{huge}\"\n[data]\nsource = \"builtin:shapes:10\"\n").as_bytes(),
    );
    d.write(
        "key.toml",
        format!("arch = \"upsample\"\n{huge} = 1\n[data]\nsource = \"builtin:shapes:10\"\n")
            .as_bytes(),
    );
    let cases: [(&[&str], &str); 4] = [
        (&["arch", "act.toml"], "(52428800 characters)"),
        (&["arch", "expr.toml"], "at most 1000"),
        (
            &["train", "--config", "config.toml", "--out", "o1"],
            "unknown architecture 'xxxx",
        ),
        (
            &["train", "--config", "key.toml", "--out", "o2"],
            "unknown field `xxxx",
        ),
    ];
    for (args, needle) in cases {
        fails_short(&run(&d.path, args), needle, 600);
    }
}

#[test]
fn error_chains_print_the_os_text_once() {
    let d = Dir::new("msg-os-error");
    d.write("file.txt", b"not a folder");
    let o = run(
        &d.path,
        &[
            "data",
            "make-labels",
            "--counts",
            "2,2",
            "-o",
            "file.txt/x_labels.npy",
        ],
    );
    fails_with(&o, "file.txt/x_labels.npy: cannot write: ");
    let err = stderr(&o);
    assert_eq!(err.matches("(os error 20)").count(), 1, "{err}");
    let o = run(
        &d.path,
        &[
            "train",
            "--data",
            "builtin:shapes:20",
            "--epochs",
            "1",
            "--out",
            "file.txt/run",
        ],
    );
    fails_with(&o, "cannot write");
    let err = stderr(&o);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

#[test]
fn a_symlinked_class_folder_is_an_error_naming_the_link_not_dog_images_filed_under_cat() {
    let d = Dir::new("msg-symlink");
    let png = |v: u8| {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_pixel(8, 8, image::Luma([v]))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    for i in 0..3 {
        d.write(&format!("data/cat/c{i}.png"), &png(10));
        d.write(&format!("data/dog/d{i}.png"), &png(200));
    }
    std::os::unix::fs::symlink("../dog", d.join("data/cat/to-dog")).unwrap();
    let o = run(
        &d.path,
        &["train", "--data", "data", "--epochs", "1", "--out", "run"],
    );
    fails_with(&o, "data/cat/to-dog: leads into data/dog");
    assert!(!d.join("run").exists(), "a refused run left a folder");
    // A loop is refused the same way.
    std::fs::remove_file(d.join("data/cat/to-dog")).unwrap();
    std::os::unix::fs::symlink("..", d.join("data/dog/up")).unwrap();
    let o = run(
        &d.path,
        &["train", "--data", "data", "--epochs", "1", "--out", "run"],
    );
    fails_with(&o, "data/dog/up: a symbolic link to");
}

#[test]
fn resize_16384x16384_is_refused_before_any_image_is_loaded() {
    let d = Dir::new("msg-resize");
    let started = Instant::now();
    let o = run(
        &d.path,
        &[
            "train",
            "--data",
            &mnist_arg(),
            "--resize",
            "16384x16384",
            "--limit",
            "1",
            "--arch",
            "pytorch-small",
            "--out",
            "run",
        ],
    );
    fails_with(&o, "--resize 16384x16384: encoder layer 1 (conv)");
    // Decoding and resizing the image took 7 s and 2 GiB; the shape check takes nothing.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Issue 16: `HxW` is parsed by the flag parser, once, so a bad size is refused before the run
/// or any image is read (the run here does not even exist), in the same words everywhere.
#[test]
fn a_bad_resize_is_refused_by_the_flag_parser_before_anything_is_read() {
    let d = Dir::new("resize-flag");
    for command in [
        &["eval", "no-such-run", "--data", "x"][..],
        &["anomaly", "score", "no-such-run"][..],
        &["train", "--data", "no-such-data"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--resize", "0x3"]);
        fails_with(
            &run(&d.path, &args),
            "invalid value '0x3' for '--resize <HxW>': size '0x3': expected HxW with positive integers",
        );
    }
}
