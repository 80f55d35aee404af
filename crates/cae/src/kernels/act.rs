//! Activations fused into the convolutions' output pass, and their gradients from the output:
//! one pass over a result that is still in cache instead of a separate Burn op that reads and
//! writes (and allocates) the whole tensor again, forward and backward.

use rayon::prelude::*;

/// An activation applied to a convolution's output (after the bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Act {
    #[default]
    Identity,
    Relu,
    Sigmoid,
}

impl Act {
    /// Applies the activation in place.
    fn apply(self, v: &mut [f32]) {
        match self {
            Act::Identity => {}
            Act::Relu => v.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Sigmoid => v.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        }
    }

    /// Whether the gradient needs the output.
    pub(crate) fn needs_output(self) -> bool {
        self != Act::Identity
    }

    /// Turns `dy`, the gradient with respect to the output `y`, into the gradient with respect
    /// to the pre-activation values, in place; the identity leaves it as it is.
    pub(crate) fn grad_in_place(self, y: &[f32], dy: &mut [f32]) {
        match self {
            Act::Identity => {}
            // As Burn: no gradient where the output is 0.
            Act::Relu => zip_in_place(y, dy, |y, g| if y > 0.0 { g } else { 0.0 }),
            Act::Sigmoid => zip_in_place(y, dy, |y, g| g * y * (1.0 - y)),
        }
    }
}

/// `dy[i] = f(y[i], dy[i])` over chunks in parallel. Generic over `f` so that each activation
/// gets its own vectorised loop (through a function pointer it was one call per element: 9 % of
/// a `keras-denoise` training step).
fn zip_in_place(y: &[f32], dy: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    const CHUNK: usize = 1 << 14;
    dy.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(g, y)| g.iter_mut().zip(y).for_each(|(g, &y)| *g = f(y, *g)));
}

/// Adds `bias[c]` to every value of channel `c` of `planes` (`[c, plane]`), then applies `act`.
pub(crate) fn finish(planes: &mut [f32], bias: Option<&[f32]>, plane: usize, act: Act) {
    for (c, p) in planes.chunks_exact_mut(plane.max(1)).enumerate() {
        if let Some(b) = bias.and_then(|b| b.get(c)) {
            p.iter_mut().for_each(|v| *v += b);
        }
        act.apply(p);
    }
}
