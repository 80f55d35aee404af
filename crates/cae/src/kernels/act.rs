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

    /// The gradient with respect to the pre-activation values, from the output `y` and the
    /// gradient `dy` with respect to it; `None` for the identity (use `dy`).
    pub(crate) fn grad(self, y: &[f32], dy: &[f32]) -> Option<Vec<f32>> {
        const CHUNK: usize = 1 << 14;
        let f: fn(f32, f32) -> f32 = match self {
            Act::Identity => return None,
            // As Burn: no gradient where the output is 0.
            Act::Relu => |y, g| if y > 0.0 { g } else { 0.0 },
            Act::Sigmoid => |y, g| g * y * (1.0 - y),
        };
        let mut out = vec![0.0; dy.len()];
        out.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
            .for_each(|(o, (y, g))| {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = f(y, g);
                }
            });
        Some(out)
    }
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
