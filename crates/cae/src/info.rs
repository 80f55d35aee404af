//! What a run is, in one record (`cae info RUN`): its architecture and size, the data rule it
//! was trained with, how far training got and how well, and its anomaly threshold. Read from
//! the run's own files only (`config.toml`, `metrics.csv`, `summary.json`, `threshold.json`);
//! no weights are loaded, so it answers at once for any run, finished or not.

use crate::anomaly::{AnomalyError, Threshold};
use crate::run::RunConfig;
use crate::run::{RunDir, RunDirError};
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Why a run could not be described.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    #[error(transparent)]
    Run(#[from] RunDirError),
    #[error(transparent)]
    Threshold(#[from] AnomalyError),
}

/// Everything `cae info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run: String,
    /// `autoencoder` or `segmentation` (a model that predicts an anomaly map).
    pub kind: &'static str,
    pub parameters: usize,
    /// The bottleneck's shape.
    pub code: String,
    /// Epochs finished (rows of `metrics.csv`).
    pub epochs_done: usize,
    /// The last finished epoch's row of `metrics.csv`, by column name.
    pub last_epoch: Option<serde_json::Map<String, serde_json::Value>>,
    /// `summary.json` of a finished training, as written.
    pub summary: Option<serde_json::Value>,
    pub threshold: Option<Threshold>,
    pub config: RunConfig,
}

impl RunInfo {
    /// Reads the run in `dir`.
    pub fn read(dir: &Path) -> Result<RunInfo, InfoError> {
        let run = RunDir::new(dir);
        let config = run.read_config()?;
        let spec = run.spec(&config)?;
        let (epochs_done, last_epoch) = match std::fs::read_to_string(run.metrics()) {
            Ok(text) => last_row(&text),
            Err(_) => (0, None),
        };
        // A summary that cannot be read only costs the report its final figures.
        let summary = std::fs::read(run.summary())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(RunInfo {
            run: dir.display().to_string(),
            kind: if spec.is_segmentation() {
                "segmentation"
            } else {
                "autoencoder"
            },
            parameters: spec.total_params(),
            code: spec.bottleneck().to_string(),
            epochs_done,
            last_epoch,
            summary,
            threshold: Threshold::load(dir)?,
            config,
        })
    }
}

/// The number of data rows of a metrics CSV and its last row, numbers parsed.
fn last_row(text: &str) -> (usize, Option<serde_json::Map<String, serde_json::Value>>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (0, None);
    };
    let rows: Vec<&str> = lines.collect();
    let last = rows.last().map(|row| {
        header
            .split(',')
            .zip(row.split(','))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                let value = v
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| serde_json::Value::String(v.to_string()), Into::into);
                (k.to_string(), value)
            })
            .collect()
    });
    (rows.len(), last)
}

impl fmt::Display for RunInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let (d, t) = (&c.data, &c.train);
        writeln!(f, "run {}", self.run)?;
        writeln!(
            f,
            "model: {} ({}), input {}, {} parameters, code {}",
            c.arch.name, self.kind, c.input, self.parameters, self.code
        )?;
        let mut rule = vec![format!("val {}", d.val_fraction)];
        rule.extend(d.resize.as_ref().map(|r| format!("resize {r}")));
        rule.extend(d.channels.map(|ch| format!("channels {ch}")));
        rule.extend(d.normalize.map(|n| format!("normalize {n}")));
        rule.extend(d.normal_class.as_ref().map(|n| format!("normal class {n}")));
        rule.extend(d.limit.map(|n| format!("limit {n}")));
        writeln!(f, "data: {} ({})", d.source, rule.join(", "))?;
        let mut recipe = vec![
            format!("loss {}", t.loss),
            format!("lr {}", t.lr),
            format!("batch {}", t.batch_size),
            format!("seed {}", t.seed),
        ];
        recipe.extend(t.synthetic.as_ref().map(|s| format!("synthetic {s}")));
        recipe.extend(t.augment.map(|a| format!("augment {a}")));
        if t.schedule != crate::run::config::LrSchedule::Constant {
            recipe.push(format!("schedule {:?}", t.schedule).to_lowercase());
        }
        recipe.extend(t.noise.as_ref().map(|n| format!("noise {n}")));
        recipe.push(format!("keeps {} weights", t.keep.unwrap_or_default()));
        writeln!(f, "training: {}", recipe.join(", "))?;
        let figures = self.last_epoch.as_ref().map_or(String::new(), |row| {
            ["train_loss", "val_loss", "val_auroc"]
                .iter()
                .filter_map(|k| {
                    row.get(*k)
                        .and_then(|v| v.as_f64())
                        .map(|v| format!("{k} {v:.6}"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        let state = match self.summary.as_ref() {
            Some(s) => format!(
                "{}, best epoch {} (loss {:.6})",
                s["stop"].as_str().unwrap_or("finished"),
                s["best_epoch"],
                s["best_loss"].as_f64().unwrap_or(f64::NAN)
            ),
            None if self.epochs_done > 0 => format!(
                "not finished: continue with `cae train --resume {}`",
                self.run
            ),
            None => "no epoch finished yet".to_string(),
        };
        writeln!(
            f,
            "epochs: {} of {}; {state}{}",
            self.epochs_done,
            t.epochs,
            if figures.is_empty() {
                String::new()
            } else {
                format!("; last: {figures}")
            }
        )?;
        match &self.threshold {
            Some(th) => write!(
                f,
                "threshold: {} on score {} ({}), fitted on {} normal + {} anomalous images of {}",
                th.image,
                th.score,
                th.method,
                th.fitted_on.normal,
                th.fitted_on.anomalous,
                th.fitted_on.source
            ),
            None => write!(
                f,
                "threshold: none (fit one with `cae anomaly threshold {}`)",
                self.run
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_metrics_row_is_read_by_column() {
        let (n, row) = last_row("epoch,train_loss,val_loss\n1,0.5,0.6\n2,0.25,\n");
        assert_eq!(n, 2);
        let row = row.unwrap();
        assert_eq!(row["train_loss"], 0.25);
        assert!(!row.contains_key("val_loss"));
        assert_eq!(last_row("").0, 0);
        assert_eq!(last_row("epoch,train_loss\n").0, 0);
    }
}
