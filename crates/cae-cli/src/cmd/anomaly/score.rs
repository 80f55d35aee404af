//! `cae anomaly score RUN`: score, normalised score and predicted label per image (needs a
//! fitted threshold); with `-o DIR`, `scores.csv` and one overlay PNG per image.

use super::{ScoreChoice, Source, create_dir};
use crate::cmd::print_json;
use anyhow::Context as _;
use cae::anomaly::{AnomalyError, Partition, Prediction, Threshold, predict};
use cae::atomic::write_atomic;
use cae::plot::{Overlay, anomaly_overlay};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub score: ScoreChoice,
    /// Write scores.csv and one overlay PNG per image into this folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// At most this many overlay pictures (the first images).
    #[arg(long, value_name = "N")]
    pub max_overlays: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Row {
    path: String,
    score: f64,
    normalized: f64,
    anomalous: bool,
    /// The truth, when the data says.
    truth: Option<bool>,
}

/// A file-name-safe tail for an image's origin: folder and stem for files
/// (`a/test/hole/017.png` → `hole-017`), short stem and index for containers (`x-y.gz#12` →
/// `x-12`).
fn file_stem(origin: &str) -> String {
    let path = Path::new(origin.split('#').next().unwrap_or(origin));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match origin.split_once('#') {
        Some((_, i)) => format!("{}-{i}", stem.split('-').next().unwrap_or("img")),
        None => match path.parent().and_then(Path::file_name) {
            Some(dir) => format!("{}-{stem}", dir.to_string_lossy()),
            None => stem,
        },
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect()
}

pub fn run(a: ScoreArgs) -> anyhow::Result<()> {
    let threshold = Threshold::require(&a.source.run)?;
    let kind = a.score.resolve(Some(&threshold))?;
    if kind != threshold.score {
        return Err(AnomalyError::ScoreMismatch {
            run: a.source.run.display().to_string(),
            fitted: threshold.score.to_string(),
            asked: kind.to_string(),
            asked_name: a.score.score.clone().unwrap_or_default(),
        }
        .into());
    }
    let ctx = a.source.load(Partition::Test)?;
    let scored = ctx.score(kind, a.source.batch_size, a.out.is_some())?;
    let truth_known = ctx.set.masks.is_some() || ctx.set.images.labels.is_some();
    let predictions: Vec<Prediction> = scored
        .scores
        .iter()
        .zip(&scored.maps)
        .map(|(&s, m)| predict(&threshold, s, m))
        .collect();
    let rows: Vec<Row> = predictions
        .iter()
        .enumerate()
        .map(|(i, p)| Row {
            path: ctx.set.images.origins[i].clone(),
            score: p.score,
            normalized: p.normalized,
            anomalous: p.anomalous,
            truth: truth_known.then(|| ctx.set.anomalous[i]),
        })
        .collect();
    if let Some(dir) = &a.out {
        write_outputs(
            dir,
            &ctx,
            &scored,
            &predictions,
            &rows,
            &threshold,
            a.max_overlays,
        )?;
    }
    let flagged = rows.iter().filter(|r| r.anomalous).count();
    if a.json {
        return print_json(&serde_json::json!({
            "threshold": threshold.image,
            "score": threshold.score,
            "images": rows,
            "flagged": flagged,
        }));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "path\tscore\tnormalized\tlabel")?;
    for r in &rows {
        let label = if r.anomalous { "anomalous" } else { "normal" };
        writeln!(
            out,
            "{}\t{:.6}\t{:.4}\t{label}",
            r.path, r.score, r.normalized
        )?;
    }
    eprintln!(
        "{} images, {flagged} labelled anomalous (score {} > {:.6}){}",
        rows.len(),
        threshold.score,
        threshold.image,
        a.out
            .as_ref()
            .map_or(String::new(), |d| format!("; pictures in {}", d.display()))
    );
    Ok(())
}

fn write_outputs(
    dir: &Path,
    ctx: &super::Context,
    scored: &cae::anomaly::ScoredSet,
    predictions: &[Prediction],
    rows: &[Row],
    threshold: &Threshold,
    max_overlays: Option<usize>,
) -> anyhow::Result<()> {
    create_dir(dir)?;
    let mut csv = String::from("index,path,score,normalized,label,truth\n");
    for (i, r) in rows.iter().enumerate() {
        let truth = r
            .truth
            .map_or("", |t| if t { "anomalous" } else { "normal" });
        let label = if r.anomalous { "anomalous" } else { "normal" };
        csv.push_str(&format!(
            "{i},\"{}\",{:.8},{:.6},{label},{truth}\n",
            r.path.replace('"', "\"\""),
            r.score,
            r.normalized
        ));
    }
    let path = dir.join("scores.csv");
    write_atomic(&path, csv.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let s = ctx.set.images.shape;
    let shape = (s.channels, s.height, s.width);
    let scale = (128 / s.height.max(s.width)).clamp(1, 8) as u32;
    let top = match threshold.pixel {
        Some(p) if p > 0.0 => 2.0 * p as f32,
        _ => scored
            .maps
            .iter()
            .flatten()
            .copied()
            .fold(f32::MIN_POSITIVE, f32::max),
    };
    let recons = scored.reconstructions.as_deref().unwrap_or_default();
    let n = max_overlays.unwrap_or(usize::MAX).min(predictions.len());
    for (i, p) in predictions.iter().enumerate().take(n) {
        let truth_mask = ctx.set.masks.as_ref().map(|m| m[i].as_slice());
        let truth = match rows[i].truth {
            Some(true) => ", truly anomalous",
            Some(false) => ", truly normal",
            None => "",
        };
        let caption = format!(
            "{}  score {:.5}  normalised {:.2}{truth}",
            if p.anomalous { "ANOMALOUS" } else { "normal" },
            p.score,
            p.normalized
        );
        let overlay = Overlay {
            original: ctx.set.images.image(i),
            reconstruction: recons.get(i).map_or(&[][..], Vec::as_slice),
            shape,
            map: &p.map,
            map_top: top,
            predicted: p.mask.as_deref(),
            truth: truth_mask,
            caption: &caption,
        };
        let png = anomaly_overlay(&overlay, scale)?;
        let name = format!("{i:04}-{}.png", file_stem(&rows[i].path));
        let path = dir.join(name);
        write_atomic(&path, &png).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn stems_are_file_name_safe() {
        assert_eq!(file_stem("/a/b/test/hole/017.png"), "hole-017");
        assert_eq!(
            file_stem("/x/mnist4k-images-idx3-ubyte.gz#12"),
            "mnist4k-12"
        );
        assert_eq!(file_stem("we ird.png"), "we_ird");
    }
}
