//! `cae demo`: trains the `upsample` preset on the procedural shapes (no download), then
//! evaluates it and writes a reconstruction picture — the whole workflow in seconds.

use super::print_json;
use crate::args::DemoArgs;
use crate::progress::Progress;
use cae::atomic::write_atomic;
use cae::data::{LoadOptions, load};
use cae::infer::{evaluate, reconstruct_first};
use cae::output::Overwrite;
use cae::plot::{encode_png, labelled_reconstruction_grid};
use cae::run::{DataConfig, TrainConfig};
use cae::run::{RunDir, RunDirError};
use cae::spec::ArchSource;
use cae::train::{NewRun, train_new};
use std::path::PathBuf;

/// `runs/demo`, or the first free `runs/demo-N`: a demo never touches an earlier run.
fn free_dir() -> PathBuf {
    let base = PathBuf::from("runs");
    (1..)
        .map(|i| {
            if i == 1 {
                base.join("demo")
            } else {
                base.join(format!("demo-{i}"))
            }
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| base.join("demo"))
}

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let out = a.out.clone().unwrap_or_else(free_dir);
    let new = NewRun {
        arch: ArchSource::Named("upsample".into()),
        params: vec![],
        data: DataConfig {
            source: "builtin:shapes:3000".into(),
            val_fraction: 0.1,
            ..Default::default()
        },
        train: TrainConfig {
            epochs: a.epochs,
            batch_size: 32,
            lr: 2e-3,
            ..Default::default()
        },
    };
    eprintln!(
        "demo: training the `upsample` CAE on 3000 procedural shapes into {}",
        out.display()
    );
    let outcome = train_new(
        &out,
        &new,
        Overwrite::from_force(a.force),
        &mut Progress::new(false),
    )?;

    let device = burn_device()?;
    let run = RunDir::new(&out)
        .load_model(&device)
        .map_err(|e: RunDirError| anyhow::anyhow!(e))?;
    // Fresh shapes the model never saw (another seed).
    let test = load(
        "builtin:shapes:500",
        &LoadOptions {
            seed: 4242,
            ..Default::default()
        },
    )?;
    let q = evaluate(&run.model, &test, 128, &device)?;
    let (o, r) = reconstruct_first(&run.model, &test, 16, &device)?;
    let o: Vec<&[f32]> = o.iter().map(Vec::as_slice).collect();
    let r: Vec<&[f32]> = r.iter().map(Vec::as_slice).collect();
    let s = test.shape;
    // The picture goes into the run: under its lock, as every write into a run.
    let _lock = RunDir::new(&out).lock("writing the demo's reconstruction")?;
    let grid = out.join("reconstruction.png");
    write_atomic(
        &grid,
        &encode_png(&labelled_reconstruction_grid(
            &o,
            &r,
            (s.channels, s.height, s.width),
            8,
            4,
            ["original", "reconstruction"],
        )?)?,
    )?;
    if a.json {
        return print_json(&serde_json::json!({ "run": out, "outcome": outcome, "test": q }));
    }
    println!("run:            {}", out.display());
    println!(
        "epochs:         {} (best validation loss {:.5} at epoch {})",
        outcome.epochs, outcome.best_loss, outcome.best_epoch
    );
    println!(
        "unseen shapes:  MSE {:.5}  PSNR {:.2} dB  SSIM {:.3} over {} images",
        q.mse, q.psnr, q.ssim, q.images
    );
    println!(
        "pictures:       {} and {}/recon/, curves {}/loss.png",
        grid.display(),
        out.display(),
        out.display()
    );
    Ok(())
}

fn burn_device() -> anyhow::Result<cae::Device> {
    Ok(cae::device::DeviceKind::Flex.device()?)
}
