//! Shape arithmetic for every layer kind, in one place, so that shape inference (`cae arch`),
//! spec checks and the model builder agree by construction. All functions are pure and return
//! `None` where the output would be empty.

use std::fmt;

/// What flows between layers: an image volume or a flat vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// channels × height × width
    Volume { c: usize, h: usize, w: usize },
    /// a feature vector
    Vector(usize),
}

impl Shape {
    /// Number of values in one example.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Volume { c, h, w } => c * h * w,
            Shape::Vector(n) => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Volume { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Vector(n) => write!(f, "{n}"),
        }
    }
}

/// Output length of a convolution or pooling window along one axis:
/// ⌊(in + pad_lo + pad_hi − dilation·(kernel − 1) − 1) / stride⌋ + 1.
pub fn conv_out(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: (usize, usize),
) -> Option<usize> {
    let padded = input + pad.0 + pad.1;
    let span = dilation * (kernel - 1) + 1;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

/// TensorFlow/Keras `same` padding along one axis: the output is ⌈in / stride⌉ and the extra
/// pixel, when the total is odd, goes to the bottom/right. Returns (low, high).
pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let span = dilation * (kernel - 1) + 1;
    let total = ((out.saturating_sub(1)) * stride + span).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// `full` padding: `dilation·(kernel − 1)` on both sides, every input pixel is seen by every
/// filter tap (output grows by kernel − 1).
pub fn full_padding(kernel: usize, dilation: usize) -> (usize, usize) {
    let p = dilation * (kernel - 1);
    (p, p)
}

/// Output length of a transposed convolution along one axis (PyTorch's formula):
/// (in − 1)·stride − 2·pad + dilation·(kernel − 1) + output_padding + 1.
pub fn conv_transpose_out(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    output_padding: usize,
) -> Option<usize> {
    let grown = (input - 1) * stride + dilation * (kernel - 1) + output_padding + 1;
    (input > 0 && grown > 2 * pad).then(|| grown - 2 * pad)
}

/// The symmetric padding and output padding that make a transposed convolution output exactly
/// `in · stride` (Keras `same`): 2·pad − output_padding = dilation·(kernel − 1) + 1 − stride.
pub fn conv_transpose_same(kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let span = (dilation * (kernel - 1) + 1) as isize;
    let excess = span - stride as isize;
    if excess >= 0 {
        let pad = (excess as usize).div_ceil(2);
        (pad, 2 * pad - excess as usize)
    } else {
        (0, (-excess) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_matches_pytorch_formula() {
        // Conv2d(1,16,3,stride=2,padding=1) on 28 -> 14, then on 14 -> 7.
        assert_eq!(conv_out(28, 3, 2, 1, (1, 1)), Some(14));
        assert_eq!(conv_out(14, 3, 2, 1, (1, 1)), Some(7));
        // valid 5x5 on 28 -> 24; dilation 2 on 3x3 spans 5.
        assert_eq!(conv_out(28, 5, 1, 1, (0, 0)), Some(24));
        assert_eq!(conv_out(28, 3, 1, 2, (0, 0)), Some(24));
        // a window larger than the padded input gives no output
        assert_eq!(conv_out(2, 3, 1, 1, (0, 0)), None);
    }

    #[test]
    fn same_padding_follows_tensorflow() {
        assert_eq!(same_padding(28, 3, 1, 1), (1, 1));
        assert_eq!(same_padding(28, 3, 2, 1), (0, 1)); // out 14: extra pixel bottom/right
        assert_eq!(same_padding(7, 3, 2, 1), (1, 1)); // out 4
        assert_eq!(same_padding(28, 4, 1, 1), (1, 2));
        for (i, k, s) in [(28, 3, 2), (7, 5, 2), (32, 4, 3), (9, 1, 1)] {
            let p = same_padding(i, k, s, 1);
            assert_eq!(
                conv_out(i, k, s, 1, p),
                Some(i.div_ceil(s)),
                "in {i} k {k} s {s}"
            );
        }
    }

    #[test]
    fn galeone_padding_formula() {
        // n filters of side 2k+1 on the input zero-padded by 2k per side give side I+2k;
        // a valid conv of side 2k+1 brings it back to I.
        for image in [7, 25, 28, 32] {
            for k in 0..4 {
                let side = 2 * k + 1;
                let pad = full_padding(side, 1);
                assert_eq!(pad, (2 * k, 2 * k));
                let hidden = conv_out(image, side, 1, 1, pad).unwrap();
                assert_eq!(hidden, image + 2 * k);
                assert_eq!(conv_out(hidden, side, 1, 1, (0, 0)), Some(image));
            }
        }
    }

    #[test]
    fn conv_transpose_matches_pytorch_formula() {
        // ConvTranspose2d(8,16,3,stride=2,padding=1,output_padding=1): 7 -> 14 -> 28
        assert_eq!(conv_transpose_out(7, 3, 2, 1, 1, 1), Some(14));
        assert_eq!(conv_transpose_out(14, 3, 2, 1, 1, 1), Some(28));
        assert_eq!(conv_transpose_out(5, 4, 1, 1, 0, 0), Some(8));
    }

    #[test]
    fn conv_transpose_same_doubles_with_stride_two() {
        for (k, s) in [
            (1, 2),
            (2, 2),
            (3, 2),
            (4, 2),
            (5, 2),
            (3, 1),
            (3, 3),
            (7, 2),
        ] {
            let (pad, op) = conv_transpose_same(k, s, 1);
            assert!(
                op < s.max(1) || (s == 1 && op == 0),
                "k {k} s {s}: output padding {op}"
            );
            assert_eq!(
                conv_transpose_out(7, k, s, 1, pad, op),
                Some(7 * s),
                "k {k} s {s}"
            );
        }
    }
}
