//! `cae probe`: a linear classifier (softmax regression) on a trained run's codes next to the
//! same classifier on raw pixels, for several label budgets; with `--finetune`, a small CNN
//! (the run's encoder + a linear head) trained end to end from the run's weights and from a
//! random start, on the same labels.

use super::print_json;
use crate::args::ProbeArgs;
use anyhow::bail;
use cae::features::classifier::{FinetuneConfig, finetune};
use cae::features::probe::{balanced_subset, labels_of, probe, split_tail};
use cae::features::softmax::SoftmaxConfig;
use cae::model::weights_to_bytes;
use cae::quote::quote;

fn parse_budget(s: &str) -> anyhow::Result<Option<usize>> {
    match s.trim() {
        "all" => Ok(None),
        n => match n.parse::<usize>() {
            Ok(v) if v > 0 => Ok(Some(v)),
            _ => bail!(
                "--budgets: {n} is not a positive number or 'all' (e.g. 100,1000,all)",
                n = quote(n)
            ),
        },
    }
}

pub fn run(a: ProbeArgs) -> anyhow::Result<()> {
    let budgets: Vec<Option<usize>> = a
        .budgets
        .iter()
        .map(|b| parse_budget(b))
        .collect::<anyhow::Result<_>>()?;
    let run = a.run.load()?;
    let device = &run.device;
    let set = run.data(&a.data.required()?)?;
    labels_of(&set)?;
    let test = a.test.unwrap_or(set.len() / 5);
    let cfg = SoftmaxConfig {
        epochs: a.epochs,
        seed: a.seed,
        ..Default::default()
    };
    let report = probe(&run.model, &set, test, &budgets, &cfg, device)?;

    let mut tuned = Vec::new();
    if a.finetune {
        let (pool, test_set) = split_tail(&set, test)?;
        let pool_labels = labels_of(&pool)?;
        let train = pool.select(&balanced_subset(pool_labels, a.finetune_labels, a.seed));
        let ft = FinetuneConfig {
            epochs: a.finetune_epochs,
            seed: a.seed,
            ..Default::default()
        };
        let bytes = weights_to_bytes(&run.model)?;
        for pretrained in [Some(bytes), None] {
            tuned.push(finetune(
                &run.spec,
                pretrained,
                &train,
                &test_set,
                report.classes,
                &ft,
                device,
            )?);
        }
    }
    if a.json {
        return print_json(&serde_json::json!({ "probe": report, "finetune": tuned }));
    }
    println!(
        "linear probe (softmax regression), test = last {} images, {} classes; codes {} values, pixels {}",
        report.test, report.classes, report.code_dim, report.pixel_dim
    );
    println!("{:>8} {:>14} {:>14}", "labels", "codes acc", "pixels acc");
    for r in &report.rows {
        println!(
            "{:>8} {:>13.1}% {:>13.1}%",
            r.labels,
            100.0 * r.codes_accuracy,
            100.0 * r.pixels_accuracy
        );
    }
    for t in &tuned {
        println!(
            "fine-tuned CNN (encoder + linear head), {} init, {} labels: test accuracy {:.1}% ({:.0} s)",
            t.init,
            t.labels,
            100.0 * t.accuracy,
            t.seconds
        );
    }
    Ok(())
}
