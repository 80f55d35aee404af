//! `cae train --stream`: an image folder read a batch at a time trains exactly as the same
//! folder loaded into memory (augmented too), resumes, and a file that disappears while training runs stops it
//! with one line naming the file and the last checkpoint intact.

use crate::serve::digit_png;
use crate::util::*;
use std::time::{Duration, Instant};

/// A folder of `n` digit PNGs of the committed fixture.
fn digits(d: &Dir, n: usize) -> String {
    for i in 0..n {
        d.write(&format!("digits/d{i:03}.png"), &digit_png(i));
    }
    d.join("digits").display().to_string()
}

/// The epoch, train loss and validation loss columns of a run's metrics.
fn losses(d: &Dir, run: &str) -> Vec<String> {
    std::fs::read_to_string(d.join(run).join("metrics.csv"))
        .expect("metrics.csv")
        .lines()
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect()
}

fn train_args<'a>(data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--arch",
        "upsample",
        "--data",
        data,
        "--epochs",
        epochs,
        "--batch-size",
        "8",
        "--out",
        out,
    ]
}

#[test]
fn streamed_training_equals_training_in_memory_and_resumes() {
    let d = Dir::new("stream-same");
    let data = digits(&d, 40);
    ok(&run(&d.path, &train_args(&data, "memory", "2")));
    let mut streamed = train_args(&data, "streamed", "2");
    streamed.push("--stream");
    ok(&run(&d.path, &streamed));
    let (a, b) = (losses(&d, "memory"), losses(&d, "streamed"));
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "streamed training moved away from training in memory");
    let config = std::fs::read_to_string(d.join("streamed/config.toml")).unwrap();
    assert!(config.contains("stream = true"), "{config}");
    ok(&run(
        &d.path,
        &["train", "--resume", "memory", "--epochs", "3"],
    ));
    ok(&run(
        &d.path,
        &["train", "--resume", "streamed", "--epochs", "3"],
    ));
    assert_eq!(losses(&d, "memory"), losses(&d, "streamed"));
    // Seeded augmentation draws the same transforms from a streamed batch.
    let mut augmented = train_args(&data, "augmented-memory", "2");
    augmented.extend(["--augment", "flip,rot90"]);
    ok(&run(&d.path, &augmented));
    let mut augmented = train_args(&data, "augmented-streamed", "2");
    augmented.extend(["--augment", "flip,rot90", "--stream"]);
    ok(&run(&d.path, &augmented));
    let (a, b) = (
        losses(&d, "augmented-memory"),
        losses(&d, "augmented-streamed"),
    );
    assert_eq!(a, b, "augmented streamed training moved away from memory");
    // Against the plain run's first two epochs (it was resumed to a third above).
    assert_ne!(a, losses(&d, "memory")[..3], "--augment changed nothing");
    // What cannot stream says so.
    let fixture = mnist_arg();
    let mut idx = train_args(&fixture, "idx", "1");
    idx.push("--stream");
    fails_with(&run(&d.path, &idx), "--stream reads image folders");
    let mut stacked = train_args(&data, "stacked", "1");
    stacked.extend(["--stream", "--stacked"]);
    fails_with(&run(&d.path, &stacked), "train without --stream");
}

#[test]
fn a_file_that_disappears_while_streaming_stops_training_with_its_checkpoint_intact() {
    let d = Dir::new("stream-gone");
    let data = digits(&d, 64);
    let mut args = train_args(&data, "run", "100000");
    args.push("--stream");
    let child = cae()
        .args(&args)
        .current_dir(&d.path)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn cae train");
    let checkpoint = d.join("run/checkpoint.bin");
    let started = Instant::now();
    while !checkpoint.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = d.join("digits/d010.png");
    let bytes = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let o = child.wait_with_output().expect("wait for cae train");
    fails_with(&o, "d010.png");
    let err = stderr(&o);
    assert!(
        err.contains("cae train --resume") && err.contains("--skip-bad"),
        "{err}"
    );
    // The file back, the run continues from its checkpoint.
    std::fs::write(&gone, bytes).unwrap();
    let done = losses(&d, "run").len() - 1;
    let more = (done + 1).to_string();
    ok(&run(
        &d.path,
        &["train", "--resume", "run", "--epochs", &more],
    ));
    assert_eq!(losses(&d, "run").len(), done + 2);
}

#[test]
fn skip_bad_leaves_out_streamed_files_that_went_bad_and_counts_them() {
    let d = Dir::new("stream-skip");
    let data = digits(&d, 40);
    let mut args = train_args(&data, "run", "1");
    args.push("--stream");
    ok(&run(&d.path, &args));
    // One file overwritten with bytes that are no image, one cut to half its length.
    std::fs::write(d.join("digits/d007.png"), b"not a png").unwrap();
    let half = d.join("digits/d009.png");
    let bytes = std::fs::read(&half).unwrap();
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let stopped = run(&d.path, &["train", "--resume", "run", "--epochs", "2"]);
    fails_with(&stopped, "d007.png");
    assert_eq!(losses(&d, "run").len(), 2, "the stopped epoch was kept");
    let o = run(
        &d.path,
        &["train", "--resume", "run", "--epochs", "2", "--skip-bad"],
    );
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("epoch 2: skipped 2 unreadable images (--skip-bad)")
            && err.contains("d007.png")
            && err.contains("d009.png"),
        "{err}"
    );
    assert_eq!(losses(&d, "run").len(), 3);
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(config.contains("skip_bad = true"), "{config}");
    // The count is recorded with the epoch.
    let summary = std::fs::read_to_string(d.join("run/summary.json")).unwrap();
    assert!(summary.contains("\"skipped\": 2"), "{summary}");
    // A run that decodes its images up front has nothing to skip mid-way.
    let mut plain = train_args(&data, "plain", "1");
    plain.push("--skip-bad");
    fails_with(&run(&d.path, &plain), "--skip-bad leaves out files");
}

#[test]
fn cache_mb_trains_the_same_values_and_serves_later_epochs_without_the_files() {
    let d = Dir::new("stream-cache");
    let data = digits(&d, 40);
    let mut plain = train_args(&data, "plain", "3");
    plain.push("--stream");
    ok(&run(&d.path, &plain));
    let mut cached = train_args(&data, "cached", "3");
    cached.extend(["--stream", "--cache-mb", "16"]);
    ok(&run(&d.path, &cached));
    assert_eq!(
        losses(&d, "plain"),
        losses(&d, "cached"),
        "the cache changed the values trained on"
    );
    let config = std::fs::read_to_string(d.join("cached/config.toml")).unwrap();
    assert!(config.contains("cache_mb = 16"), "{config}");
    // Every image fits: once the first epoch has read them, the files are not needed.
    let mut long = train_args(&data, "long", "100000");
    long.extend(["--stream", "--cache-mb", "16"]);
    let child = cae()
        .args(&long)
        .current_dir(&d.path)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn cae train");
    let started = Instant::now();
    while !d.join("long/checkpoint.bin").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = losses(&d, "long").len();
    for i in 0..40 {
        std::fs::write(d.join(&format!("digits/d{i:03}.png")), b"gone bad").unwrap();
    }
    while losses(&d, "long").len() < done + 3 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "training stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = child;
    let _ = child.kill();
    let o = child.wait_with_output().expect("wait for cae train");
    assert!(
        !stderr(&o).contains("d0"),
        "a cached file was read again: {}",
        stderr(&o)
    );
    // Without --stream every image is in memory already.
    let mut memory = train_args(&data, "memory", "1");
    memory.extend(["--cache-mb", "16"]);
    fails_with(&run(&d.path, &memory), "--cache-mb keeps decoded images");
}

#[test]
fn a_cache_too_small_for_the_images_says_what_would_hold_them() {
    let d = Dir::new("stream-cache-small");
    // Eight 512x512 gray images (256 KiB each decoded): 1 MiB keeps four.
    for i in 0..8u32 {
        let img =
            image::GrayImage::from_fn(512, 512, |x, y| image::Luma([((x + y + i) % 251) as u8]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        d.write(&format!("big/{i}.png"), &png.into_inner());
    }
    let data = d.join("big").display().to_string();
    let mut args = train_args(&data, "run", "2");
    args.extend([
        "--stream",
        "--cache-mb",
        "1",
        "--resize",
        "32x32",
        "--val-fraction",
        "0",
    ]);
    let o = run(&d.path, &args);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("--cache-mb 1 keeps 4 of the images read (1 MiB); the other 4 are decoded")
            && err.contains("--cache-mb about 3 would keep them all"),
        "{err}"
    );
    // Said once, not every epoch.
    assert_eq!(err.matches("--cache-mb 1 keeps").count(), 1, "{err}");
}
