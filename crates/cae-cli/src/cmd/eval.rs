//! `cae eval`: MSE, PSNR and SSIM of a trained run's reconstructions of a data set.

use super::print_json;
use crate::args::EvalArgs;
use cae::infer::evaluate;

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let run = a.run.load()?;
    let set = run.data(&a.data.required()?)?;
    let q = evaluate(&run.model, &set, a.batch_size.max(1), &run.device)?;
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
