//! `cae anomaly threshold RUN`: fits the decision threshold on held-out images (by default the
//! run's validation partition, never its training images) and stores it in RUN/threshold.json.

use super::Context;
use crate::args::ThresholdArgs;
use crate::cmd::print_json;
use anyhow::bail;
use cae::anomaly::fused::Fusion;
use cae::anomaly::threshold::{FitScores, ThresholdMethod, fit};
use cae::anomaly::{ScoreKind, Threshold};
use cae::run::{Partition, RunDir, load_fit_data};

fn method(a: &ThresholdArgs) -> anyhow::Result<ThresholdMethod> {
    Ok(match (a.percentile, a.fpr, a.f1, a.value) {
        (Some(p), ..) => ThresholdMethod::Percentile(p),
        (_, Some(f), ..) => ThresholdMethod::Fpr(f),
        (_, _, true, _) => ThresholdMethod::F1,
        (.., Some(v)) => ThresholdMethod::Manual {
            image: v,
            pixel: a.pixel_value,
        },
        _ => {
            bail!("choose how to fit the threshold: --percentile 99, --fpr 0.01, --f1 or --value X")
        }
    })
}

pub fn run(a: ThresholdArgs) -> anyhow::Result<()> {
    let method = method(&a)?;
    method.check()?;
    a.score.asked()?;
    // threshold.json is written into the run: no trainer may write it meanwhile. A folder that
    // is not a run is refused first, before a lock file is made in it.
    let run = RunDir::new(&a.source.run.path);
    run.read_config()?;
    let _lock = run.lock("fitting a threshold")?;
    let earlier = Threshold::load(&a.source.run.path).ok().flatten();
    let ctx = Context::load(&a.source, Partition::Validation)?;
    let kind = a.score.resolve(None, &ctx.run.spec)?;
    let mut scored = ctx.score_model(kind, a.source.batch_size, false)?;
    // A fused score fits its two parts' norms on the same images, the run's training partition
    // as the reference.
    let mut fusion = None;
    if matches!(kind, ScoreKind::Fused { .. }) {
        let train = load_fit_data(&ctx.run.config)?.train;
        let (f, fused) = Fusion::fit(kind, train, scored, &ctx.set.images, &ctx.set.anomalous)?;
        scored = fused;
        fusion = Some(f);
    }
    let maxima = scored.map_maxima();
    let mut threshold = fit(
        kind,
        method,
        FitScores {
            scores: &scored.scores,
            map_maxima: &maxima,
            anomalous: &ctx.set.anomalous,
            source: &ctx.set.source,
        },
    )?;
    threshold.fusion = fusion.as_ref().map(|f| f.norms);
    // The reference first: a threshold never names norms without the images they go with.
    if let Some(f) = &fusion {
        f.save_reference(&a.source.run.path)?;
    }
    let path = threshold.save(&a.source.run.path)?;
    // The run's threshold is this command's to replace; say so rather than do it silently.
    if let Some(old) = earlier {
        eprintln!(
            "replaced the earlier threshold {:.6} on score {} ({})",
            old.image, old.score, old.method
        );
    }
    let normal: Vec<f64> = scored
        .scores
        .iter()
        .zip(&ctx.set.anomalous)
        .filter(|(_, a)| !**a)
        .map(|(s, _)| *s)
        .collect();
    let flagged = normal
        .iter()
        .filter(|&&s| threshold.is_anomalous(s))
        .count();
    let fitting_fpr = flagged as f64 / normal.len().max(1) as f64;
    // A threshold at the highest normal score flags no normal image it was fitted on: with few
    // normals the requested FPR cannot be met, and recall suffers without a word otherwise.
    let top = normal.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if method.normal_only()
        && !matches!(method, ThresholdMethod::Manual { .. })
        && normal.len() > 1
        && threshold.image >= top
    {
        let asked = match method {
            ThresholdMethod::Fpr(t) => format!("--fpr {t}"),
            ThresholdMethod::Percentile(p) => format!("--percentile {p}"),
            _ => String::new(),
        };
        eprintln!(
            "warning: with {} normal images, {asked} puts the threshold at their highest score, so it flags none of them and only anomalies scoring above every normal image; fit on more normal images (a larger --val-fraction, or --data) or ask for a higher rate",
            normal.len()
        );
    }
    if a.json {
        return print_json(&serde_json::json!({
            "path": path,
            "threshold": threshold,
            "fitting_normal_flagged": fitting_fpr,
        }));
    }
    println!(
        "threshold {:.6} on score {} ({method}); pixel threshold {}",
        threshold.image,
        threshold.score,
        threshold
            .pixel
            .map_or("none".to_string(), |p| format!("{p:.6}")),
    );
    let f = &threshold.fitted_on;
    println!(
        "fitted on {}: {} normal, {} anomalous images; flags {:.1}% of those normal images",
        f.source,
        f.normal,
        f.anomalous,
        100.0 * fitting_fpr
    );
    if let (Some(e), ThresholdMethod::Fpr(t)) = (threshold.expected_fpr, method) {
        let note = if e < t - 1e-12 || e > t + 1e-12 {
            format!(" (the closest {} normal images allow)", f.normal)
        } else {
            String::new()
        };
        println!(
            "expected false positive rate on unseen normal images: {:.2}%{note}",
            100.0 * e
        );
    }
    println!("wrote {}", path.display());
    Ok(())
}
