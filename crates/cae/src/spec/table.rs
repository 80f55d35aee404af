//! The human-readable summary of a checked spec: one row per layer with its output shape and
//! parameters, then totals, bottleneck and compression ratio (what `cae arch` prints).

use super::check::{LayerPlan, PlannedLayer, ValidSpec};
use serde::Serialize;

/// One row of the table, also the JSON form of `cae arch --json`.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub part: String,
    pub index: Option<usize>,
    pub layer: String,
    pub detail: String,
    pub input: String,
    pub output: String,
    pub params: usize,
}

/// Everything `cae arch` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ArchSummary {
    pub name: String,
    pub input: String,
    pub layers: Vec<LayerRow>,
    pub total_params: usize,
    pub bottleneck: String,
    pub bottleneck_values: usize,
    pub compression_ratio: f64,
}

fn detail(plan: &LayerPlan) -> String {
    match plan {
        LayerPlan::Conv {
            filters,
            kernel,
            stride,
            padding,
            activation,
            ..
        } => {
            format!(
                "{filters} filters {}x{} stride {} pad {:?} {activation}",
                kernel[0], kernel[1], stride[0], padding
            )
        }
        LayerPlan::ConvTranspose {
            filters,
            kernel,
            stride,
            padding,
            output_padding,
            activation,
            ..
        } => format!(
            "{filters} filters {}x{} stride {} pad {:?} out_pad {:?} {activation}",
            kernel[0], kernel[1], stride[0], padding, output_padding
        ),
        LayerPlan::MaxPool { size, stride, .. } | LayerPlan::AvgPool { size, stride, .. } => {
            format!("{}x{} stride {}", size[0], size[1], stride[0])
        }
        LayerPlan::Upsample { factor, mode } => format!("x{} {mode:?}", factor[0]).to_lowercase(),
        LayerPlan::Dense {
            units, activation, ..
        } => format!("{units} units {activation}"),
        LayerPlan::Dropout { rate } => format!("rate {rate}"),
        LayerPlan::Activation(a) => a.to_string(),
        LayerPlan::Save { name, .. } => format!("as {}", crate::quote::quote(name)),
        LayerPlan::Concat { name, channels, .. } => {
            format!("+{channels} ch from {}", crate::quote::quote(name))
        }
        LayerPlan::Zscore { floor, .. } => format!("+ per-pixel z-score, std floor {floor}"),
        LayerPlan::BatchNorm { .. } | LayerPlan::Flatten | LayerPlan::Reshape { .. } => {
            String::new()
        }
    }
}

fn row(l: &PlannedLayer) -> LayerRow {
    LayerRow {
        part: l.part.to_string(),
        index: l.index,
        layer: l.plan.kind().to_string(),
        detail: detail(&l.plan),
        input: l.input.to_string(),
        output: l.output.to_string(),
        params: l.plan.params(),
    }
}

impl ValidSpec {
    pub fn summary(&self) -> ArchSummary {
        let b = self.bottleneck();
        ArchSummary {
            name: self.spec.name.clone(),
            input: self.input.to_string(),
            layers: self.layers().map(row).collect(),
            total_params: self.total_params(),
            bottleneck: b.to_string(),
            bottleneck_values: b.len(),
            compression_ratio: self.compression_ratio(),
        }
    }
}

impl std::fmt::Display for ArchSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "architecture {} on input {}", self.name, self.input)?;
        writeln!(
            f,
            "{:<8} {:<19} {:<58} {:>10} {:>9}",
            "part", "layer", "settings", "output", "params"
        )?;
        for r in &self.layers {
            let name = match r.index {
                Some(i) => format!("{i}. {}", r.layer),
                None => format!("   ({})", r.layer),
            };
            writeln!(
                f,
                "{:<8} {:<19} {:<58} {:>10} {:>9}",
                r.part, name, r.detail, r.output, r.params
            )?;
        }
        writeln!(f, "total parameters: {}", self.total_params)?;
        writeln!(
            f,
            "bottleneck: {} ({} values)",
            self.bottleneck, self.bottleneck_values
        )?;
        write!(
            f,
            "compression ratio: {:.2} (input values / code values)",
            self.compression_ratio
        )
    }
}
