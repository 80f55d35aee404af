//! `cae anomaly score RUN`: score, normalised score and predicted label per image (needs a
//! fitted threshold); with `-o DIR`, `scores.csv` and one overlay PNG per image. The images
//! are scored a block at a time (`crate::cmd::BLOCK`, folders decoded block by block), so an
//! archive larger than memory is scored in the memory of one block.

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
    // Block by block (`crate::cmd::BLOCK` images): an archive larger than memory is scored
    // with the memory of one block; rows go out as each block is scored.
    let mut ctx = Context::load_blocks(&a.source, Partition::Test, shard)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut picks = SheetPicks::default();
    let mut stdout = std::io::stdout().lock();
    if !a.json && !a.jsonl {
        writeln!(stdout, "path\tscore\tnormalized\tlabel")?;
    }
    loop {
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
        let block: Vec<Row> = predictions
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
            rows: &block,
            threshold: &threshold,
        };
        if let Some(dir) = &mut out {
            write_overlays(dir, &pictures, a.max_overlays)?;
        }
        if sheet.is_some() {
            picks.offer(&pictures);
        }
        if !a.json {
            print_rows(&mut stdout, &block, a.jsonl)?;
        }
        rows.extend(block);
        if !ctx.next_block()? {
            break;
        }
    }
    if let Some(dir) = &mut out {
        write_scores(dir, &rows)?;
    }
    if let Some(sheet) = &sheet {
        let parts: Vec<Overlay> = picks.chosen().map(OwnedOverlay::view).collect();
        let png = overlay_sheet(&parts, picks.scale, 2)?;
        sheet.write(&png)?;
    }
    let flagged = rows.iter().filter(|r| r.anomalous).count();
    if a.jsonl {
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

/// One block's rows on stdout: JSON lines, or the tab-separated table (its header printed once
/// before the first block).
fn print_rows(out: &mut impl Write, rows: &[Row], jsonl: bool) -> anyhow::Result<()> {
    for r in rows {
        if jsonl {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            let label = if r.anomalous { "anomalous" } else { "normal" };
            writeln!(
                out,
                "{}\t{:.6}\t{:.4}\t{label}",
                r.path, r.score, r.normalized
            )?;
        }
    }
    Ok(())
}

/// What the overlay pictures of one block are drawn from.
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

/// An overlay's data copied out of its block, for the contact sheet drawn after the last one.
struct OwnedOverlay {
    original: Vec<f32>,
    reconstruction: Vec<f32>,
    shape: (usize, usize, usize),
    map: Vec<f32>,
    map_top: f32,
    predicted: Option<Vec<u8>>,
    truth: Option<Vec<u8>>,
    caption: String,
    segmentation: bool,
}

impl OwnedOverlay {
    fn of(o: &Overlay<'_>) -> OwnedOverlay {
        OwnedOverlay {
            original: o.original.to_vec(),
            reconstruction: o.reconstruction.to_vec(),
            shape: o.shape,
            map: o.map.to_vec(),
            map_top: o.map_top,
            predicted: o.predicted.map(<[u8]>::to_vec),
            truth: o.truth.map(<[u8]>::to_vec),
            caption: o.caption.to_string(),
            segmentation: o.segmentation,
        }
    }

    fn view(&self) -> Overlay<'_> {
        Overlay {
            original: &self.original,
            reconstruction: &self.reconstruction,
            shape: self.shape,
            map: &self.map,
            map_top: self.map_top,
            predicted: self.predicted.as_deref(),
            truth: self.truth.as_deref(),
            caption: &self.caption,
            segmentation: self.segmentation,
        }
    }
}

/// The images of a contact sheet, gathered block by block: up to 8 truly anomalous, then up
/// to 4 truly normal, in order; the first 12 when the truth is unknown.
#[derive(Default)]
struct SheetPicks {
    anomalous: Vec<OwnedOverlay>,
    normal: Vec<OwnedOverlay>,
    /// Without truth: the first images.
    first: Vec<OwnedOverlay>,
    scale: u32,
}

impl SheetPicks {
    fn offer(&mut self, pictures: &Pictures<'_>) {
        self.scale = pictures.scale();
        for (i, row) in pictures.rows.iter().enumerate() {
            let list = match row.truth {
                Some(true) if self.anomalous.len() < 8 => &mut self.anomalous,
                Some(false) if self.normal.len() < 4 => &mut self.normal,
                None if self.first.len() < 12 => &mut self.first,
                _ => continue,
            };
            let caption = pictures.caption(i);
            list.push(OwnedOverlay::of(&pictures.overlay(i, &caption)));
        }
    }

    fn chosen(&self) -> impl Iterator<Item = &OwnedOverlay> {
        self.anomalous.iter().chain(&self.normal).chain(&self.first)
    }
}

/// `scores.csv`: every image's row, numbered over all blocks.
fn write_scores(dir: &mut OutputDir, rows: &[Row]) -> anyhow::Result<()> {
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
    Ok(())
}

/// One overlay PNG per image of the block among the first `max_overlays` of all, named by the
/// image's index over all blocks.
fn write_overlays(
    dir: &mut OutputDir,
    pictures: &Pictures<'_>,
    max_overlays: usize,
) -> anyhow::Result<()> {
    let offset = pictures.ctx.offset;
    for (i, row) in pictures.rows.iter().enumerate() {
        let index = offset + i;
        if index >= max_overlays {
            break;
        }
        let caption = pictures.caption(i);
        let png = anomaly_overlay(&pictures.overlay(i, &caption), pictures.scale())?;
        let name = format!("{index:04}-{}.png", file_stem(&row.path));
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
