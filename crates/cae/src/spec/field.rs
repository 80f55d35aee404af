//! Which layer and which field a spec value does not fit, and why, in words. serde alone says
//! `data did not match any variant of untagged enum Pair: in decoder` for `--param k=-1` on
//! galeone — no layer, no field, no value. Each layer is read on its own first, and a layer
//! that does not read is taken apart field by field, so the message names the layer, the
//! field, what the user wrote (`"$(2*k+1)"` with `k = -1`), what came out (`-1`) and what the
//! field takes.

use super::layer::{Activation, LayerSpec, Padding, Pair, Regularizer, UpsampleMode};
use crate::quote::quote;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Reads every layer of `part` (`"encoder"` or `"decoder"`) on its own; the first that does
/// not read is explained. `written` is the part before `$` substitution, `params` the values
/// substituted.
pub(super) fn check_part(
    part: &str,
    substituted: Option<&toml::Value>,
    written: Option<&toml::Value>,
    params: &BTreeMap<String, f64>,
) -> Result<(), String> {
    let Some(toml::Value::Array(layers)) = substituted else {
        // Not a list: the whole-spec read says so.
        return Ok(());
    };
    for (i, layer) in layers.iter().enumerate() {
        let Err(e) = LayerSpec::deserialize(layer.clone()) else {
            continue;
        };
        // Named as the shape checks name layers; a type that is not a plain word is quoted.
        let kind = match layer.get("type").and_then(toml::Value::as_str) {
            Some(t)
                if t.len() <= 32 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                t.to_string()
            }
            Some(t) => quote(t).to_string(),
            None => "no type".to_string(),
        };
        let at = format!("{part} layer {} ({kind})", i + 1);
        let written = written.and_then(|w| w.get(i));
        let detail = misfit(layer, written, params)
            .unwrap_or_else(|| crate::quote::shorten_quoted(&e.to_string()));
        return Err(format!("{at}: {detail}"));
    }
    Ok(())
}

/// The first field of `layer` whose value its type does not take, explained.
fn misfit(
    layer: &toml::Value,
    written: Option<&toml::Value>,
    params: &BTreeMap<String, f64>,
) -> Option<String> {
    let table = layer.as_table()?;
    table.iter().find_map(|(key, value)| {
        let allowed = takes(key, value)?;
        let shown = show(value);
        let origin = match written.and_then(|w| w.get(key)) {
            Some(toml::Value::String(s)) if s.starts_with('$') => {
                format!(
                    "{key} = {}{} gives {shown}",
                    quote(s),
                    used_params(s, params)
                )
            }
            _ => format!("{key} = {shown}"),
        };
        Some(format!("{origin}, but {key} must be {allowed}"))
    })
}

/// What `key` takes, when `value` is not it; `None` when it is (or the key is unknown, which
/// serde's own message names).
fn takes(key: &str, value: &toml::Value) -> Option<&'static str> {
    let fits = |ok: bool, what: &'static str| (!ok).then_some(what);
    let v = value.clone();
    match key {
        "kernel" | "stride" | "dilation" | "size" | "factor" | "output_padding" => fits(
            Pair::deserialize(v).is_ok(),
            "a whole number (0 or more) or [height, width] of them",
        ),
        "filters" | "units" => fits(usize::deserialize(v).is_ok(), "a whole number (0 or more)"),
        "padding" => fits(
            Padding::deserialize(v).is_ok(),
            "\"same\", \"valid\", \"full\", a whole number, [h, w] or [top, left, bottom, right]",
        ),
        "activation" | "function" => fits(
            Activation::deserialize(v).is_ok(),
            "an activation: relu, leaky_relu(slope), elu(alpha), gelu, sigmoid, tanh or identity",
        ),
        "kernel_regularizer" => fits(
            Regularizer::deserialize(v).is_ok(),
            "l1(weight) or l2(weight)",
        ),
        "mode" => fits(
            UpsampleMode::deserialize(v).is_ok(),
            "\"nearest\" or \"bilinear\"",
        ),
        "rate" => fits(f64::deserialize(v).is_ok(), "a number"),
        "bias" => fits(bool::deserialize(v).is_ok(), "true or false"),
        "shape" => fits(String::deserialize(v).is_ok(), "a string like \"8x7x7\""),
        _ => None,
    }
}

/// A value as TOML writes it, strings cut.
fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => quote(s).to_string(),
        other => crate::quote::cut_line(&other.to_string(), 80),
    }
}

/// ` (with k = -1)`: the parameters an expression names, with their values.
fn used_params(expr: &str, params: &BTreeMap<String, f64>) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut used: Vec<String> = Vec::new();
    for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if let Some(v) = params.get(word)
            && seen.insert(word)
        {
            used.push(format!("{word} = {v}"));
        }
    }
    if used.is_empty() {
        String::new()
    } else {
        format!(" (with {})", used.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, f64> {
        BTreeMap::from([("k".to_string(), -1.0), ("n".to_string(), 32.0)])
    }

    fn layers(text: &str) -> toml::Value {
        toml::from_str::<toml::Value>(text).unwrap()["layer"].clone()
    }

    #[test]
    fn a_bad_value_names_the_layer_the_field_what_came_out_and_what_is_allowed() {
        let written = layers(
            "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\n\
             [[layer]]\ntype = \"conv\"\nfilters = \"$n\"\nkernel = \"$(2*k+1)\"\n",
        );
        let substituted = layers(
            "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\n\
             [[layer]]\ntype = \"conv\"\nfilters = 32\nkernel = -1\n",
        );
        let e = check_part("decoder", Some(&substituted), Some(&written), &params()).unwrap_err();
        assert_eq!(
            e,
            "decoder layer 2 (conv): kernel = '$(2*k+1)' (with k = -1) gives -1, but kernel \
             must be a whole number (0 or more) or [height, width] of them"
        );
        // A fraction, written directly.
        let v = layers("[[layer]]\ntype = \"max_pool\"\nsize = 1.5\n");
        let e = check_part("encoder", Some(&v), Some(&v), &params()).unwrap_err();
        assert!(
            e.starts_with("encoder layer 1 (max_pool): size = 1.5, but size must be"),
            "{e}"
        );
    }

    #[test]
    fn good_layers_pass_and_unknown_fields_keep_serdes_message() {
        let v = layers("[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = [3, 5]\n");
        assert!(check_part("encoder", Some(&v), Some(&v), &params()).is_ok());
        let v = layers("[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\nfilterz = 2\n");
        let e = check_part("encoder", Some(&v), Some(&v), &params()).unwrap_err();
        assert!(e.starts_with("encoder layer 1 (conv): "), "{e}");
        assert!(e.contains("filterz"), "{e}");
    }
}
