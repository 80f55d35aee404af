//! `cae bench`: how fast an architecture trains and infers on this machine (median ms per step,
//! images/s, GFLOP/s). Threads: set RAYON_NUM_THREADS for the flex backend.

use super::print_json;
use crate::args::BenchArgs;
use crate::args::parse_params;
use anyhow::Context;
use cae::data::ImageShape;
use cae::spec::ArchSpec;
use cae::speed::{SpeedSettings, measure};

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let input = a
        .input
        .as_deref()
        .map(ImageShape::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let spec = ArchSpec::resolve(&a.arch, &parse_params(&a.param)?, input)?;
    let device = a.device.device()?;
    let settings = SpeedSettings {
        batch: a.batch,
        warmup: a.warmup,
        steps: a.steps,
    };
    let r = measure(&spec, &device, settings).context("benchmark")?;
    if a.json {
        return print_json(&r);
    }
    println!(
        "{} on {} x{} ({} params, {:.4} GFLOP forward per image)",
        r.arch, r.input, r.batch, r.params, r.forward_gflop_per_image
    );
    for (name, p) in [("train", &r.train), ("infer", &r.infer)] {
        println!(
            "{name}: {:8.2} ms/step  {:9.0} images/s  {:6.1} GFLOP/s",
            p.ms_per_step, p.images_per_second, p.gflops
        );
    }
    Ok(())
}
