//! `cae patches`: cuts images (e.g. a few large photographs of different sizes) into square
//! patches and writes them as one N×C×S×S float32 `.npy` that `cae train --data` reads —
//! training data for a denoising CAE of natural images, or a patch set to benchmark on.

use super::print_json;
use crate::args::PatchesArgs;
use anyhow::bail;
use cae::data::{LoadOptions, load};
use cae::denoise::patches::{concat, cut_patches};
use cae::features::npy_write::f32_npy;
use cae::output::{OutputFile, Overwrite};

pub fn run(a: PatchesArgs) -> anyhow::Result<()> {
    if a.side == 0 {
        bail!("--side must be at least 1");
    }
    let output = OutputFile::check(&a.output, Overwrite::from_force(a.force))?;
    let options = LoadOptions {
        channels: a.channels,
        ..Default::default()
    };
    let mut sets = Vec::new();
    for input in &a.inputs {
        let set = load(input, &options)?;
        let patches = cut_patches(&set, a.side, a.stride.unwrap_or(a.side));
        if patches.is_empty() {
            bail!(
                "{input}: images are {} , smaller than a {}x{} patch",
                set.shape,
                a.side,
                a.side
            );
        }
        sets.push(patches);
    }
    let all = concat(sets)?;
    let s = all.shape;
    let bytes = f32_npy(&all.pixels, &[all.len(), s.channels, s.height, s.width])?;
    output.write(&bytes)?;
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "patches": all.len(), "shape": s.to_string(),
        }));
    }
    println!(
        "wrote {} ({} patches of {})",
        a.output.display(),
        all.len(),
        s
    );
    Ok(())
}
