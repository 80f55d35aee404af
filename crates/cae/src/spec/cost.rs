//! Arithmetic cost of a checked spec: floating-point operations per image for the forward pass
//! (a multiply-add counts as two), from the layer shapes. Used to report GFLOP/s in benchmarks;
//! pooling, upsampling and activations are memory-bound and not counted, as is customary.

use super::check::{LayerPlan, PlannedLayer, ValidSpec};
use super::shape::Shape;

/// Forward FLOPs of one layer for one image.
pub fn layer_flops(layer: &PlannedLayer) -> u64 {
    let spatial = |s: Shape| match s {
        Shape::Volume { h, w, .. } => (h * w) as u64,
        Shape::Vector(_) => 1,
    };
    match layer.plan {
        LayerPlan::Conv {
            in_channels,
            filters,
            kernel,
            ..
        } => 2 * spatial(layer.output) * (filters * in_channels * kernel[0] * kernel[1]) as u64,
        // Every input pixel scatters a kernel into every output channel.
        LayerPlan::ConvTranspose {
            in_channels,
            filters,
            kernel,
            ..
        } => 2 * spatial(layer.input) * (filters * in_channels * kernel[0] * kernel[1]) as u64,
        LayerPlan::Dense { inputs, units, .. } => 2 * (inputs * units) as u64,
        _ => 0,
    }
}

impl ValidSpec {
    /// Forward FLOPs per image; a training step costs about three times this (forward, input
    /// gradient, weight gradient).
    pub fn forward_flops(&self) -> u64 {
        self.layers().map(layer_flops).sum()
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::ArchSpec;

    #[test]
    fn pytorch_small_flops_by_hand() {
        let v = ArchSpec::resolve("pytorch-small", &[], None).unwrap();
        // conv1: 14·14·16·1·9, conv2: 7·7·8·16·9, convT1: 7·7·8·16·9, convT2: 14·14·16·1·9
        let macs = 14 * 14 * 16 * 9 + 7 * 7 * 8 * 16 * 9 + 7 * 7 * 8 * 16 * 9 + 14 * 14 * 16 * 9;
        assert_eq!(v.forward_flops(), 2 * macs as u64);
    }

    #[test]
    fn dense_layers_count_their_matrix() {
        let v = ArchSpec::resolve("dense-latent", &[], None).unwrap();
        let dense: u64 = 2 * (128 * 7 * 7 * 128) as u64 * 2;
        assert!(v.forward_flops() > dense);
    }
}
