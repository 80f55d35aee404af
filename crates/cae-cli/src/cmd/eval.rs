//! `cae eval`: MSE, PSNR and SSIM of a trained run's reconstructions of a data set.

use super::data::load_for_run;
use super::print_json;
use crate::args::EvalArgs;
use cae::infer::evaluate;
use cae::run::RunDir;

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let device = a.device.device()?;
    let run = RunDir::new(&a.run).load_model(&device)?;
    let set = load_for_run(&a.data, &run)?;
    let q = evaluate(&run.model, &set, a.batch_size.max(1), &device).map_err(anyhow::Error::msg)?;
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
