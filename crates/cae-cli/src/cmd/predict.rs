//! `cae predict RUN IMAGE…`: one line per image — verdict, score, normalised score — with the
//! run's fitted threshold and score kind, exactly as `cae anomaly score` labels them. Images
//! are read by the run's data rule; each may have its own size (a run trained without
//! `--resize` scores it whole or in tiles).

use super::anomaly::Context;
use super::print_json;
use crate::args::{DataArgs, PredictArgs, Source};
use cae::anomaly::run_data::anomaly_data;
use cae::anomaly::{Threshold, predict};
use cae::run::Partition;
use serde::Serialize;
use std::io::Write;

/// One image's verdict.
#[derive(Debug, Serialize)]
struct Verdict {
    path: String,
    anomalous: bool,
    score: f64,
    normalized: f64,
    threshold: f64,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    for image in &a.images {
        if !image.is_file() {
            anyhow::bail!(
                "{}: not an image file; cae predict takes image files (score a folder or a data set with `cae anomaly score RUN --data SRC`)",
                image.display()
            );
        }
    }
    let threshold = Threshold::require(&a.run.path)?;
    let mut out = std::io::stdout().lock();
    let source = Source {
        run: a.run.clone(),
        data: DataArgs {
            data: Some(a.images[0].display().to_string()),
            channels: None,
            resize: None,
            classes: None,
            limit: None,
        },
        normal_class: None,
        partition: None,
        batch_size: 1,
    };
    let mut ctx: Context = Context::load(&source, Partition::Test)?;
    for (i, image) in a.images.iter().enumerate() {
        let path = image.display().to_string();
        if i > 0 {
            let request = source.request(Some(path.clone()))?;
            ctx.set = anomaly_data(&ctx.run, &request, Partition::Test)?;
        }
        let scored = ctx.score(threshold.score, Some(&threshold), 1, false)?;
        let (Some(&score), Some(map)) = (scored.scores.first(), scored.maps.first()) else {
            anyhow::bail!("{path}: no image read");
        };
        let p = predict(&threshold, score, map);
        let verdict = Verdict {
            path,
            anomalous: p.anomalous,
            score: p.score,
            normalized: p.normalized,
            threshold: threshold.image,
        };
        if a.json {
            print_json(&verdict)?;
        } else {
            writeln!(
                out,
                "{}: {}  score {:.5}  normalised {:.2}  (threshold {:.5})",
                verdict.path,
                if verdict.anomalous {
                    "ANOMALOUS"
                } else {
                    "normal"
                },
                verdict.score,
                verdict.normalized,
                verdict.threshold
            )?;
        }
    }
    Ok(())
}
