//! The architectures shipped inside the binary, each a small TOML file in `presets/`.

/// A shipped architecture.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub toml: &'static str,
}

/// Every preset, in the order `cae arch --list` shows them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "galeone",
        toml: include_str!("presets/galeone.toml"),
    },
    Preset {
        name: "pytorch-small",
        toml: include_str!("presets/pytorch-small.toml"),
    },
    Preset {
        name: "keras-denoise",
        toml: include_str!("presets/keras-denoise.toml"),
    },
    Preset {
        name: "dense-latent",
        toml: include_str!("presets/dense-latent.toml"),
    },
    Preset {
        name: "upsample",
        toml: include_str!("presets/upsample.toml"),
    },
    Preset {
        name: "oneclass",
        toml: include_str!("presets/oneclass.toml"),
    },
    Preset {
        name: "inspect",
        toml: include_str!("presets/inspect.toml"),
    },
    Preset {
        name: "inspect-unet",
        toml: include_str!("presets/inspect-unet.toml"),
    },
    Preset {
        name: "inspect-aligned",
        toml: include_str!("presets/inspect-aligned.toml"),
    },
];

/// The preset called `name`, if any.
pub fn preset(name: &str) -> Option<Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}

/// Preset names joined for messages.
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
