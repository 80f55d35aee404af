//! `cae anomaly eval RUN`: detection and localisation metrics on labelled images (by default the
//! run's held-out test partition); with `-o DIR`, the score histogram, the ROC curve and the
//! PRO curve (with masks) as PNGs, and scores.csv.

use super::Context;
use crate::args::AnomalyEvalArgs;
use crate::cmd::print_json;
use cae::anomaly::baseline::{BaselineEvaluation, evaluate_baselines};
use cae::anomaly::metrics::roc_curve;
use cae::anomaly::pixel::{PRO_FPR_LIMIT, PixelSet, pro_curve};
use cae::anomaly::{Evaluation, Threshold, evaluate};
use cae::output::{OutputDir, Overwrite};
use cae::plot::{Series, line_chart, score_histogram};
use cae::run::Partition;
use cae::run::load_fit_data;
use std::path::Path;

/// The model's evaluation with the baselines beside it.
#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    model: &'a Evaluation,
    baselines: &'a [BaselineEvaluation],
}

pub fn run(a: AnomalyEvalArgs) -> anyhow::Result<()> {
    let mut out = a
        .out
        .as_ref()
        .map(|d| OutputDir::prepare(d, Overwrite::from_force(a.force)))
        .transpose()?;
    let fitted = Threshold::load(&a.source.run.path)?;
    a.score.asked()?;
    let ctx = Context::load(&a.source, Partition::Test)?;
    let kind = a.score.resolve(fitted.as_ref(), &ctx.run.spec)?;
    let scored = ctx.score(kind, fitted.as_ref(), a.source.batch_size, false)?;
    // A threshold only means something for the score it was fitted on.
    let threshold = fitted.filter(|t| t.score == kind);
    let e = evaluate(&scored, &ctx.set, threshold.as_ref())?;
    if let Some(dir) = &mut out {
        write_pictures(dir, &e, &scored, &ctx.set, threshold.as_ref())?;
    }
    let baselines = if a.no_baseline {
        vec![]
    } else {
        let fit = load_fit_data(&ctx.run.config)?;
        evaluate_baselines(
            &fit.train,
            &fit.val,
            &ctx.set,
            threshold.as_ref().map(|t| t.method),
        )?
    };
    if a.json {
        return print_json(&Report {
            model: &e,
            baselines: &baselines,
        });
    }
    print_report(&e, a.out.as_deref());
    print_baselines(&e, &baselines);
    Ok(())
}

/// One line per baseline score, and a warning when one does as well as the model.
fn print_baselines(model: &Evaluation, baselines: &[BaselineEvaluation]) {
    for b in baselines {
        let e = &b.evaluation;
        let at = e.at_threshold.as_ref().map_or(String::new(), |t| {
            format!(
                "  F1 {:.4}  precision {:.4}  recall {:.4}  FPR {:.4}",
                t.f1, t.precision, t.recall, t.fpr
            )
        });
        println!(
            "baseline {}, {}: image AUROC {:.4}  AUPR {:.4}{at}",
            b.baseline, b.statistic, e.image_auroc, e.image_aupr
        );
    }
    if let Some(best) = baselines.iter().max_by(|x, y| {
        x.evaluation
            .image_auroc
            .total_cmp(&y.evaluation.image_auroc)
    }) {
        let gap = model.image_auroc - best.evaluation.image_auroc;
        if gap < 0.01 {
            eprintln!(
                "warning: the model's image AUROC {:.4} is no better than the {} baseline's {:.4} ({}); a statistical model of the normal images does as well as this network",
                model.image_auroc, best.baseline, best.evaluation.image_auroc, best.statistic
            );
        } else {
            println!(
                "the model beats the best baseline ({}) by {:.4} image AUROC",
                best.statistic, gap
            );
        }
    }
}

fn print_report(e: &Evaluation, out: Option<&Path>) {
    println!(
        "{}: {} images ({} normal, {} anomalous), score {}",
        e.source, e.images, e.normal, e.anomalous, e.score
    );
    println!("image AUROC {:.4}  AUPR {:.4}", e.image_auroc, e.image_aupr);
    match &e.at_threshold {
        Some(t) => {
            let c = t.confusion;
            println!(
                "at threshold {:.6}: F1 {:.4}  precision {:.4}  recall {:.4}  FPR {:.4}  accuracy {:.4}",
                t.threshold, t.f1, t.precision, t.recall, t.fpr, t.accuracy
            );
            println!(
                "confusion: TP {}  FP {}  TN {}  FN {}",
                c.tp, c.fp, c.tn, c.fn_
            );
        }
        None => println!(
            "no threshold for this score: fit one with `cae anomaly threshold` for F1, precision, recall"
        ),
    }
    if let Some(p) = &e.pixel {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        println!(
            "pixel AUROC {}  PRO (FPR ≤ {}) {}",
            f(p.auroc),
            p.pro_fpr_limit,
            f(p.pro)
        );
    }
    if !e.per_class.is_empty() {
        let parts: Vec<String> = e
            .per_class
            .iter()
            .map(|c| format!("{} {:.4} ({})", c.class, c.auroc, c.images))
            .collect();
        println!("AUROC per anomalous class: {}", parts.join(", "));
    }
    if let Some(d) = out {
        println!("pictures in {}", d.display());
    }
}

fn write_pictures(
    dir: &mut OutputDir,
    e: &Evaluation,
    scored: &cae::anomaly::ScoredSet,
    set: &cae::anomaly::AnomalySet,
    threshold: Option<&Threshold>,
) -> anyhow::Result<()> {
    let split = |want: bool| -> Vec<f64> {
        scored
            .scores
            .iter()
            .zip(&set.anomalous)
            .filter(|(_, a)| **a == want)
            .map(|(s, _)| *s)
            .collect()
    };
    let title = format!("Scores ({}), image AUROC {:.4}", e.score, e.image_auroc);
    let png = score_histogram(
        &title,
        &split(false),
        &split(true),
        threshold.map(|t| t.image),
        (900, 520),
    )?;
    dir.write("histogram.png", &png)?;

    let roc: Vec<(f64, f64)> = roc_curve(&scored.scores, &set.anomalous)
        .iter()
        .map(|p| (p.fpr, p.tpr))
        .collect();
    let chance = [(0.0, 0.0), (1.0, 1.0)];
    let series = [
        Series {
            name: "ROC",
            points: &roc,
        },
        Series {
            name: "chance",
            points: &chance,
        },
    ];
    let title = format!("ROC curve, AUROC {:.4}", e.image_auroc);
    let png = line_chart(
        &title,
        "false positive rate",
        "true positive rate",
        &series,
        false,
        (640, 560),
    )?;
    dir.write("roc.png", &png)?;

    if let Some(masks) = &set.masks {
        let s = set.images.shape;
        let curve = pro_curve(PixelSet {
            maps: &scored.maps,
            masks,
            size: (s.height, s.width),
        });
        let inside: Vec<(f64, f64)> = curve
            .iter()
            .copied()
            .filter(|p| p.0 <= PRO_FPR_LIMIT)
            .collect();
        // One corner per distinct pixel value can be a million points: draw about 2,000.
        let step = (inside.len() / 2000).max(1);
        let mut shown: Vec<(f64, f64)> = inside.iter().copied().step_by(step).collect();
        shown.extend(inside.last().copied());
        let title = format!(
            "Per-region overlap, PRO {}",
            e.pixel
                .as_ref()
                .and_then(|p| p.pro)
                .map_or("n/a".into(), |v| format!("{v:.4}"))
        );
        let png = line_chart(
            &title,
            "pixel false positive rate",
            "mean region overlap",
            &[Series {
                name: "PRO",
                points: &shown,
            }],
            false,
            (640, 560),
        )?;
        dir.write("pro.png", &png)?;
    }

    let mut csv = String::from("index,path,score,truth\n");
    for (i, (s, a)) in scored.scores.iter().zip(&set.anomalous).enumerate() {
        let truth = if *a { "anomalous" } else { "normal" };
        csv.push_str(&format!(
            "{i},\"{}\",{s:.8},{truth}\n",
            set.images.origins[i].replace('"', "\"\"")
        ));
    }
    dir.write("scores.csv", csv.as_bytes())?;
    Ok(())
}
