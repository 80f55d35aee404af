//! The PyTorch model a checked spec stands for: one `nn.Sequential` whose modules follow the
//! planned layers in order. It fixes the parameter names export writes and import expects
//! (`{module index}.weight`, ...) and gives the Python source that builds the same model, so any
//! spec — not only the presets — can be loaded in PyTorch.
//!
//! Each planned layer becomes these modules, in this order:
//!
//! | layer | modules |
//! | --- | --- |
//! | conv | `ZeroPad2d` if its padding differs between opposite sides, `Conv2d`, activation |
//! | conv_transpose | `ConvTranspose2d`, activation |
//! | dense | `Linear`, activation |
//! | max_pool / avg_pool | `MaxPool2d` / `AvgPool2d` (extra bottom/right padding via `ceil_mode`) |
//! | upsample | `Upsample` |
//! | batch_norm | `BatchNorm2d` (volume) or `BatchNorm1d` (vector) |
//! | dropout | `Dropout` |
//! | activation | the activation (`Identity` for `identity`) |
//! | implicit flatten / reshape | `Flatten` / `Unflatten(1, (c, h, w))` |
//! | save / concat | `Save(kept, name)` / `Concat(kept, name)` (defined in the source) |
//! | zscore | `ZScore(c, h, w, floor)` (defined in the source; buffers `mean`, `std`) |
//!
//! A layer's activation adds a module only when it is not `identity`. `torch.nn` has no module
//! that joins a volume kept earlier or z-scores against per-pixel statistics, so a spec with
//! skip connections or a `zscore` layer gives a short Python program instead of one
//! expression: it defines the modules it needs (`Save` and `Concat` have no parameters, so the
//! state-dict names stay `{module index}.weight`) and binds the network to `model`.

use super::InteropError;
use crate::spec::{Activation, LayerPlan, PlannedLayer, Shape, UpsampleMode, ValidSpec};

/// The `nn.Sequential` of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchSequential {
    /// Python source of each module, e.g. `nn.ReLU()`, in order.
    pub modules: Vec<TorchModule>,
    /// The first `encoder_modules` modules are the encoder (`net[:encoder_modules]` encodes).
    pub encoder_modules: usize,
    /// Per planned layer (encoder then decoder): the index of its module holding parameters.
    pub param_module: Vec<Option<usize>>,
    /// The spec has skip connections: the source is a program, not an expression.
    pub has_skips: bool,
    /// The spec starts with a `zscore` layer: the source is a program defining `ZScore`.
    pub has_zscore: bool,
}

/// One module of the sequential.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchModule {
    /// Python source, with `nn` standing for `torch.nn`.
    pub source: String,
    /// The planned layer it comes from, e.g. `encoder layer 1 (conv)`.
    pub layer: String,
}

/// Builds the sequential of `spec`; fails for a layer PyTorch has no module for.
pub fn torch_sequential(spec: &ValidSpec) -> Result<TorchSequential, InteropError> {
    let mut modules = Vec::new();
    let mut param_module = Vec::new();
    let mut encoder_modules = 0;
    for (pos, planned) in spec.layers().enumerate() {
        if pos == spec.encoder.len() {
            encoder_modules = modules.len();
        }
        let layer = describe(planned);
        let (sources, params_at) =
            layer_modules(planned).map_err(|reason| InteropError::Unsupported {
                layer: layer.clone(),
                reason,
            })?;
        param_module.push(params_at.map(|k| modules.len() + k));
        modules.extend(sources.into_iter().map(|source| TorchModule {
            source,
            layer: layer.clone(),
        }));
    }
    if spec.decoder.is_empty() {
        encoder_modules = modules.len();
    }
    let has_skips = spec
        .layers()
        .any(|l| matches!(l.plan, LayerPlan::Save { .. } | LayerPlan::Concat { .. }));
    Ok(TorchSequential {
        modules,
        encoder_modules,
        param_module,
        has_skips,
        has_zscore: spec.zscore().is_some(),
    })
}

/// The opening of a program (a spec with skip connections or a `zscore` layer).
const PROGRAM_IMPORTS: &str = "import torch\nfrom torch import nn\n\n";

/// The modules a spec with skip connections needs.
const SKIP_MODULES: &str = r#"
class Save(nn.Module):
    """The encoder end of a skip connection: keeps its input in kept[name], passes it on."""

    def __init__(self, kept, name):
        super().__init__()
        self.kept, self.name = kept, name

    def forward(self, x):
        self.kept[self.name] = x
        return x


class Concat(nn.Module):
    """The decoder end: appends the volume Save kept to its input, along channels."""

    def __init__(self, kept, name):
        super().__init__()
        self.kept, self.name = kept, name

    def forward(self, x):
        return torch.cat([x, self.kept[self.name]], 1)

"#;

/// The module of a `zscore` layer (cae's `model::Zscore`: the same clip and scale).
const ZSCORE_MODULE: &str = r#"
class ZScore(nn.Module):
    """Appends the per-pixel z-score against the training images' mean and std (buffers)."""

    def __init__(self, c, h, w, floor):
        super().__init__()
        self.floor = floor
        self.register_buffer("mean", torch.zeros(c, h, w))
        self.register_buffer("std", torch.ones(c, h, w))

    def forward(self, x):
        z = ((x - self.mean) / (self.std + self.floor)).clamp(-8.0, 8.0) / 4.0
        return torch.cat([x, z], 1)

"#;

impl TorchSequential {
    /// Python source of the whole model: `nn.Sequential(...)`, one module per line with its
    /// index and the layer it comes from as a comment. `eval(source, {"nn": torch.nn})` builds
    /// it; with skip connections ([`Self::has_skips`]) it is a program, and
    /// `exec(source, scope)` leaves the network in `scope["model"]`.
    pub fn source(&self) -> String {
        let program = self.has_skips || self.has_zscore;
        let mut out = String::new();
        if program {
            out.push_str(PROGRAM_IMPORTS);
        }
        if self.has_skips {
            out.push_str(SKIP_MODULES);
        }
        if self.has_zscore {
            out.push_str(ZSCORE_MODULE);
        }
        if self.has_skips {
            out.push_str("\nkept = {}\n");
        }
        if program {
            out.push_str("model = ");
        }
        out.push_str("nn.Sequential(\n");
        for (i, m) in self.modules.iter().enumerate() {
            out.push_str(&format!("    {},  # {i}: {}\n", m.source, m.layer));
        }
        out.push(')');
        if program {
            out.push('\n');
        }
        out
    }
}

/// `encoder layer 2 (conv)`, or `encoder flatten (implicit)`.
pub(super) fn describe(l: &PlannedLayer) -> String {
    match l.index {
        Some(i) => format!("{} layer {i} ({})", l.part, l.plan.kind()),
        None => format!("{} {} (implicit)", l.part, l.plan.kind()),
    }
}

/// The modules of one planned layer and which of them holds its parameters.
fn layer_modules(l: &PlannedLayer) -> Result<(Vec<String>, Option<usize>), String> {
    let mut out = Vec::new();
    let mut params_at = None;
    match &l.plan {
        LayerPlan::Conv {
            in_channels,
            filters,
            kernel,
            stride,
            dilation,
            padding: [t, lft, b, r],
            activation,
            bias,
            ..
        } => {
            let symmetric = t == b && lft == r;
            if !symmetric {
                out.push(format!("nn.ZeroPad2d(({lft}, {r}, {t}, {b}))"));
            }
            let pad = if symmetric { [*t, *lft] } else { [0, 0] };
            params_at = Some(out.len());
            out.push(format!(
                "nn.Conv2d({in_channels}, {filters}, kernel_size={}, stride={}, padding={}, dilation={}, bias={})",
                pair(*kernel),
                pair(*stride),
                pair(pad),
                pair(*dilation),
                py_bool(*bias)
            ));
            out.extend(activation_module(*activation));
        }
        LayerPlan::ConvTranspose {
            in_channels,
            filters,
            kernel,
            stride,
            padding,
            output_padding,
            activation,
            bias,
            ..
        } => {
            params_at = Some(0);
            out.push(format!(
                "nn.ConvTranspose2d({in_channels}, {filters}, kernel_size={}, stride={}, padding={}, output_padding={}, bias={})",
                pair(*kernel),
                pair(*stride),
                pair(*padding),
                pair(*output_padding),
                py_bool(*bias)
            ));
            out.extend(activation_module(*activation));
        }
        LayerPlan::Dense {
            inputs,
            units,
            activation,
            bias,
            ..
        } => {
            params_at = Some(0);
            out.push(format!(
                "nn.Linear({inputs}, {units}, bias={})",
                py_bool(*bias)
            ));
            out.extend(activation_module(*activation));
        }
        LayerPlan::MaxPool {
            size,
            stride,
            padding,
        } => {
            let (pad, ceil) = pool_padding(l, *size, *stride, *padding)?;
            out.push(format!(
                "nn.MaxPool2d(kernel_size={}, stride={}, padding={}, ceil_mode={})",
                pair(*size),
                pair(*stride),
                pair(pad),
                py_bool(ceil)
            ));
        }
        LayerPlan::AvgPool {
            size,
            stride,
            padding,
        } => {
            let (pad, ceil) = pool_padding(l, *size, *stride, *padding)?;
            out.push(format!(
                "nn.AvgPool2d(kernel_size={}, stride={}, padding={}, ceil_mode={}, count_include_pad=False)",
                pair(*size),
                pair(*stride),
                pair(pad),
                py_bool(ceil)
            ));
        }
        LayerPlan::Upsample { factor, mode } => {
            let scale = format!("({}.0, {}.0)", factor[0], factor[1]);
            out.push(match mode {
                UpsampleMode::Nearest => {
                    format!("nn.Upsample(scale_factor={scale}, mode='nearest')")
                }
                UpsampleMode::Bilinear => format!(
                    "nn.Upsample(scale_factor={scale}, mode='bilinear', align_corners=False)"
                ),
            });
        }
        LayerPlan::BatchNorm { features } => {
            params_at = Some(0);
            let dims = match l.input {
                Shape::Volume { .. } => "2d",
                Shape::Vector(_) => "1d",
            };
            out.push(format!("nn.BatchNorm{dims}({features})"));
        }
        LayerPlan::Dropout { rate } => out.push(format!("nn.Dropout(p={})", py_float(*rate))),
        LayerPlan::Activation(a) => {
            out.push(activation_module(*a).unwrap_or_else(|| "nn.Identity()".into()))
        }
        LayerPlan::Flatten => out.push("nn.Flatten()".into()),
        LayerPlan::Reshape { c, h, w } => out.push(format!("nn.Unflatten(1, ({c}, {h}, {w}))")),
        LayerPlan::Save { name, .. } => out.push(format!("Save(kept, {})", py_str(name))),
        LayerPlan::Concat { name, .. } => out.push(format!("Concat(kept, {})", py_str(name))),
        LayerPlan::Zscore {
            channels,
            height,
            width,
            floor,
        } => {
            params_at = Some(0);
            out.push(format!(
                "ZScore({channels}, {height}, {width}, {})",
                py_float(*floor)
            ));
        }
    }
    Ok((out, params_at))
}

/// The activation's module, `None` for identity.
fn activation_module(a: Activation) -> Option<String> {
    Some(match a {
        Activation::Identity => return None,
        Activation::Relu => "nn.ReLU()".into(),
        Activation::LeakyRelu(s) => format!("nn.LeakyReLU(negative_slope={})", py_float(s)),
        Activation::Elu(alpha) => format!("nn.ELU(alpha={})", py_float(alpha)),
        Activation::Gelu => "nn.GELU()".into(),
        Activation::Sigmoid => "nn.Sigmoid()".into(),
        Activation::Tanh => "nn.Tanh()".into(),
    })
}

/// PyTorch pools pad `(top, left)` on both sides; a larger bottom/right padding is what
/// `ceil_mode` adds, when it gives the same output size. Returns the padding and the mode.
fn pool_padding(
    l: &PlannedLayer,
    size: [usize; 2],
    stride: [usize; 2],
    [t, lft, b, r]: [usize; 4],
) -> Result<([usize; 2], bool), String> {
    let (Shape::Volume { h, w, .. }, Shape::Volume { h: oh, w: ow, .. }) = (l.input, l.output)
    else {
        return Err("a pool needs an image volume".into());
    };
    let fits = |ceil: bool| {
        torch_pool_out(h, size[0], stride[0], t, ceil) == Some(oh)
            && torch_pool_out(w, size[1], stride[1], lft, ceil) == Some(ow)
    };
    if b >= t && r >= lft {
        if fits(false) {
            return Ok(([t, lft], false));
        }
        if fits(true) {
            return Ok(([t, lft], true));
        }
    }
    Err(format!(
        "padding [top {t}, left {lft}, bottom {b}, right {r}] on {h}x{w} gives {oh}x{ow}, which no PyTorch pool (symmetric padding, ceil_mode) reproduces"
    ))
}

/// PyTorch's pooled size for one axis (`torch.nn.MaxPool2d` docs, dilation 1).
fn torch_pool_out(n: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
    let span = (n + 2 * p).checked_sub(k)?;
    if !ceil {
        return Some(span / s + 1);
    }
    let out = span.div_ceil(s) + 1;
    // The last window must start inside the input or its left padding.
    Some(if (out - 1) * s >= n + p { out - 1 } else { out })
}

fn pair([a, b]: [usize; 2]) -> String {
    format!("({a}, {b})")
}

fn py_bool(v: bool) -> &'static str {
    if v { "True" } else { "False" }
}

/// A string literal Python reads back as `s` (names are the user's: quote and escape them).
fn py_str(s: &str) -> String {
    let mut out = String::from("'");
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A float as Python reads it (`0.1`, `1.0`, `1e-5`).
fn py_float(v: f64) -> String {
    format!("{v:?}")
}
