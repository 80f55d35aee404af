//! `cae anomaly score RUN`: score, normalised score and predicted label per image (needs a
//! fitted threshold); with `-o DIR`, `scores.csv` and one overlay PNG per image.

use super::Context;
use crate::args::ScoreArgs;
use crate::cmd::print_json;
use cae::anomaly::{AnomalyError, Prediction, Threshold, predict};
use cae::data::Shard;
use cae::output::{OutputDir, OutputFile, Overwrite};
use cae::plot::{Overlay, anomaly_overlay, map_top, overlay_sheet};
use cae::run::Partition;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

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
    crate::cmd::file_name_part(&name).chars().take(48).collect()
}

pub fn run(a: ScoreArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    let mut out = a
        .out
        .as_ref()
        .map(|d| OutputDir::prepare(d, overwrite))
        .transpose()?;
    let sheet = a
        .sheet
        .as_ref()
        .map(|p| OutputFile::check(p, overwrite))
        .transpose()?;
    let threshold = Threshold::require(&a.source.run.path)?;
    let kind = a.score.asked()?.unwrap_or(threshold.score);
    if kind != threshold.score {
        return Err(AnomalyError::ScoreMismatch {
            run: a.source.run.path.display().to_string(),
            fitted: threshold.score.to_string(),
            asked: kind.to_string(),
            asked_name: a.score.score.clone().unwrap_or_default(),
        }
        .into());
    }
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let ctx = Context::load_shard(&a.source, Partition::Test, shard)?;
    let scored = ctx.score(
        kind,
        Some(&threshold),
        a.source.batch_size,
        a.out.is_some() || a.sheet.is_some(),
    )?;
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
    let pictures = Pictures {
        ctx: &ctx,
        scored: &scored,
        predictions: &predictions,
        rows: &rows,
        threshold: &threshold,
    };
    if let Some(dir) = &mut out {
        write_outputs(dir, &pictures, a.max_overlays)?;
    }
    if let Some(sheet) = &sheet {
        let chosen = sheet_images(&rows);
        let overlays: Vec<(String, usize)> =
            chosen.iter().map(|&i| (pictures.caption(i), i)).collect();
        let parts: Vec<Overlay> = overlays
            .iter()
            .map(|(caption, i)| pictures.overlay(*i, caption))
            .collect();
        let png = overlay_sheet(&parts, pictures.scale(), 2)?;
        sheet.write(&png)?;
    }
    let flagged = rows.iter().filter(|r| r.anomalous).count();
    if a.jsonl {
        for r in &rows {
            print_json(r)?;
        }
        return Ok(());
    }
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
        a.out.as_ref().map_or(String::new(), |d| {
            let drawn = a.max_overlays.min(rows.len());
            let of = if drawn < rows.len() {
                format!(" of the first {drawn} (--max-overlays N for more)")
            } else {
                String::new()
            };
            format!("; pictures{of} in {}", d.display())
        })
    );
    Ok(())
}

/// What the overlay pictures are drawn from.
struct Pictures<'a> {
    ctx: &'a super::Context,
    scored: &'a cae::anomaly::ScoredSet,
    predictions: &'a [Prediction],
    rows: &'a [Row],
    threshold: &'a Threshold,
}

impl Pictures<'_> {
    /// Pixel scale of the overlays: small images are enlarged to about 128 pixels.
    fn scale(&self) -> u32 {
        let s = self.ctx.set.images.shape;
        (128 / s.height.max(s.width)).clamp(1, 8) as u32
    }

    fn caption(&self, i: usize) -> String {
        let p = &self.predictions[i];
        let truth = match self.rows[i].truth {
            Some(true) => ", truly anomalous",
            Some(false) => ", truly normal",
            None => "",
        };
        format!(
            "{}  score {:.5}  normalised {:.2}{truth}",
            if p.anomalous { "ANOMALOUS" } else { "normal" },
            p.score,
            p.normalized
        )
    }

    fn overlay<'b>(&'b self, i: usize, caption: &'b str) -> Overlay<'b> {
        let s = self.ctx.set.images.shape;
        let p = &self.predictions[i];
        let recons = self.scored.reconstructions.as_deref().unwrap_or_default();
        Overlay {
            original: self.ctx.set.images.image(i),
            reconstruction: recons.get(i).map_or(&[][..], Vec::as_slice),
            shape: (s.channels, s.height, s.width),
            map: &p.map,
            map_top: map_top(self.threshold.pixel, &self.scored.maps[i]),
            predicted: p.mask.as_deref(),
            truth: self.ctx.set.masks.as_ref().map(|m| m[i].as_slice()),
            caption,
            segmentation: self.ctx.run.spec.is_segmentation(),
        }
    }
}

/// The images of a contact sheet: up to 8 truly anomalous, then up to 4 truly normal, in
/// order; the first 12 when the truth is unknown.
fn sheet_images(rows: &[Row]) -> Vec<usize> {
    let of = |want: bool, n: usize| -> Vec<usize> {
        (0..rows.len())
            .filter(|&i| rows[i].truth == Some(want))
            .take(n)
            .collect()
    };
    let mut chosen = of(true, 8);
    chosen.extend(of(false, 4));
    if chosen.is_empty() {
        chosen = (0..rows.len().min(12)).collect();
    }
    chosen
}

fn write_outputs(
    dir: &mut OutputDir,
    pictures: &Pictures<'_>,
    max_overlays: usize,
) -> anyhow::Result<()> {
    let rows = pictures.rows;
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
    dir.write("scores.csv", csv.as_bytes())?;
    let n = max_overlays.min(pictures.predictions.len());
    for (i, row) in rows.iter().enumerate().take(n) {
        let caption = pictures.caption(i);
        let png = anomaly_overlay(&pictures.overlay(i, &caption), pictures.scale())?;
        let name = format!("{i:04}-{}.png", file_stem(&row.path));
        dir.write(name, &png)?;
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
