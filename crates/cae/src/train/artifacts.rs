//! What a training writes into its run directory after every epoch besides the weights and
//! checkpoint: `metrics.csv`, the loss and monitor curves, and the reconstruction grid (with the
//! spread that tells a collapsed model), each written atomically.

use super::checkpoint::EpochRecord;
use super::error::TrainError;
use crate::atomic::write_atomic;
use crate::data::ImageSet;
use crate::infer::reconstruct_first;
use crate::model::Autoencoder;
use crate::plot::{self, Series};
use crate::run::RunDir;
use burn::tensor::Device;

pub(super) fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), TrainError> {
    write_atomic(path, bytes).map_err(|source| TrainError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Rewrites `metrics.csv` and `loss.png` from the history.
pub(super) fn write_metrics(run: &RunDir, history: &[EpochRecord]) -> Result<(), TrainError> {
    let names: Vec<&String> = history
        .first()
        .map(|r| r.monitors.keys().collect())
        .unwrap_or_default();
    let auroc = history.iter().any(|r| r.val_auroc.is_some());
    let mut csv = String::from("epoch,train_loss,val_loss,seconds,images_per_second");
    if auroc {
        csv.push_str(",val_auroc");
    }
    for n in &names {
        csv.push_str(&format!(",{n}_mse"));
    }
    csv.push('\n');
    for r in history {
        let val = r.val_loss.map(|v| format!("{v:.8}")).unwrap_or_default();
        csv.push_str(&format!(
            "{},{:.8},{val},{:.3},{:.1}",
            r.epoch, r.train_loss, r.seconds, r.images_per_second
        ));
        if auroc {
            let a = r.val_auroc.map(|v| format!("{v:.6}")).unwrap_or_default();
            csv.push_str(&format!(",{a}"));
        }
        for n in &names {
            csv.push_str(
                &r.monitors
                    .get(*n)
                    .map(|v| format!(",{v:.8}"))
                    .unwrap_or_else(|| ",".into()),
            );
        }
        csv.push('\n');
    }
    write(&run.metrics(), csv.as_bytes())?;

    let curve = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let train = curve(&|r| Some(r.train_loss));
    let val = curve(&|r| r.val_loss);
    let mut series = vec![Series {
        name: "train loss",
        points: &train,
    }];
    if !val.is_empty() {
        series.push(Series {
            name: "validation loss",
            points: &val,
        });
    }
    let png = plot::line_chart(
        "Reconstruction loss",
        "epoch",
        "loss",
        &series,
        true,
        (800, 500),
    )
    .map_err(|source| TrainError::Plot {
        what: "loss.png",
        source,
    })?;
    write(&run.loss_plot(), &png)?;

    if !names.is_empty() {
        let curves: Vec<Vec<(f64, f64)>> = names
            .iter()
            .map(|n| curve(&|r| r.monitors.get(*n).copied()))
            .collect();
        let series: Vec<Series> = names
            .iter()
            .zip(&curves)
            .map(|(n, c)| Series { name: n, points: c })
            .collect();
        let png = plot::line_chart(
            "Mean reconstruction error of held-out sets",
            "epoch",
            "MSE per image",
            &series,
            true,
            (800, 500),
        )
        .map_err(|source| TrainError::Plot {
            what: "monitors.png",
            source,
        })?;
        write(&run.monitors_plot(), &png)?;
    }
    Ok(())
}

/// Originals above reconstructions for the first 16 images, `recon/epoch-NNN.png`; returns the
/// spread (standard deviation) of the reconstructed values relative to that of the originals,
/// near 0 when the model collapsed to one constant output.
pub(super) fn write_recon_grid(
    run: &RunDir,
    model: &Autoencoder,
    set: &ImageSet,
    epoch: usize,
    labels: [&str; 2],
    device: &Device,
) -> Result<f64, TrainError> {
    let (originals, recons) = reconstruct_first(model, set, 16, device)?;
    let spread = spread(recons.iter().flatten().copied())
        / spread(originals.iter().flatten().copied()).max(1e-12);
    let s = set.shape;
    let scale = (112 / s.height.max(s.width)).clamp(1, 4) as u32;
    // A segmentation model's one-channel map is shown in every channel of the image.
    let recons: Vec<Vec<f32>> = recons
        .into_iter()
        .map(|r| match r.len() == s.len() {
            true => r,
            false => r.repeat(s.channels),
        })
        .collect();
    let o: Vec<&[f32]> = originals.iter().map(Vec::as_slice).collect();
    let r: Vec<&[f32]> = recons.iter().map(Vec::as_slice).collect();
    let image = plot::labelled_reconstruction_grid(
        &o,
        &r,
        (s.channels, s.height, s.width),
        8,
        scale,
        labels,
    )
    .map_err(|source| TrainError::Plot {
        what: "the reconstruction grid",
        source,
    })?;
    let png = plot::encode_png(&image).map_err(|source| TrainError::Plot {
        what: "the reconstruction grid",
        source,
    })?;
    let dir = run.recon_dir();
    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    write(&dir.join(format!("epoch-{epoch:03}.png")), &png)?;
    Ok(spread)
}

/// Standard deviation of `values` (0 for none).
fn spread(values: impl Iterator<Item = f32>) -> f64 {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for v in values {
        n += 1.0;
        sum += f64::from(v);
        sq += f64::from(v) * f64::from(v);
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt()
}
