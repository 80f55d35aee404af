//! `cae eval`: MSE, PSNR and SSIM of a trained run's reconstructions of a data set (an image
//! folder read [`super::BLOCK`] images at a time, into one running mean).

use super::{BLOCK, print_json};
use crate::args::EvalArgs;
use cae::infer::accumulate_quality;
use cae::quality::QualityAccumulator;

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let run = a.run.load()?;
    let mut acc: Option<QualityAccumulator> = None;
    run.data_blocks(&a.data.required()?, BLOCK, |set| -> anyhow::Result<()> {
        let s = set.shape;
        let acc =
            acc.get_or_insert_with(|| QualityAccumulator::new((s.channels, s.height, s.width)));
        accumulate_quality(&run.model, &set, a.batch_size.max(1), &run.device, acc)?;
        Ok(())
    })?;
    let q = acc
        .ok_or_else(|| anyhow::anyhow!("no images to evaluate"))?
        .summary();
    if a.json {
        print_json(&q)?;
    } else {
        println!(
            "images {}  MSE {:.6}  PSNR {:.2} dB  SSIM {:.4}",
            q.images, q.mse, q.psnr, q.ssim
        );
    }
    Ok(())
}
