//! `cae arch`: the layer table of a preset, a spec file or a run directory's architecture on a
//! given input.

use super::print_json;
use crate::args::ArchArgs;
use crate::args::parse_params;
use cae::data::ImageShape;
use cae::run::RunDir;
use cae::spec::{ArchSource, ArchSpec, PRESETS};
use std::path::Path;

pub fn run(a: ArchArgs) -> anyhow::Result<()> {
    if a.list {
        if a.json {
            let list: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
            return print_json(&list);
        }
        for p in PRESETS {
            let v = ArchSpec::resolve(p.name, &[], None)?;
            println!(
                "{:<15} {:>9} params  {}",
                p.name,
                v.total_params(),
                v.spec.description
            );
        }
        return Ok(());
    }
    let name = a.arch.as_deref().unwrap_or_default();
    let input = a
        .input
        .as_deref()
        .map(ImageShape::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let params = parse_params(&a.param)?;
    let spec = if RunDir::exists(Path::new(name)) {
        // A run directory: the architecture it was trained with, at its input (or --input).
        let run = RunDir::new(name);
        let config = run.read_config()?;
        let input = match input {
            Some(i) => Some(i),
            None => Some(config.input_shape()?),
        };
        ArchSource::Inline(Box::new(config.arch)).resolve(&params, input)?
    } else {
        ArchSpec::resolve(name, &params, input)?
    };
    if a.toml {
        print!("{}", spec.spec.to_toml());
    } else if a.torch {
        println!("{}", cae::interop::torch_sequential(&spec)?.source());
    } else if a.json {
        print_json(&spec.summary())?;
    } else {
        println!("{}", spec.summary());
    }
    Ok(())
}
