//! TOML errors as one line. The `toml` crate's messages span several lines (a gutter with the
//! offending source line and a caret under it); everything here prints errors as one line, so
//! the gutter is dropped and the location joined to the message:
//! `line 62, column 1: unknown field `colour`, expected one of …`.

/// `e` as one line: location (when known) and message, with long quoted values cut (serde
/// quotes a value it cannot take whole, however long).
pub fn one_line(e: &impl std::fmt::Display) -> String {
    let line = e
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_gutter(l))
        .map(|l| l.strip_prefix("TOML parse error at ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(": ");
    crate::quote::shorten_quoted(&line)
}

/// A line of the source excerpt: `|`, `62 | colour = 3` or `| ^^^`.
fn is_gutter(line: &str) -> bool {
    line.trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start()
        .starts_with('|')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        epochs: u32,
    }

    #[test]
    fn keeps_location_and_message_on_one_line() {
        let e = toml::from_str::<Config>("epochs = 3\ncolour = 3\n").unwrap_err();
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("line 2, column 1: unknown field `colour`"),
            "{line}"
        );
    }

    #[test]
    fn syntax_errors_keep_their_location() {
        let e = toml::from_str::<Config>("epochs = = 3\n").unwrap_err();
        let line = one_line(&e);
        assert!(line.starts_with("line 1, column "), "{line}");
        assert!(!line.contains('|'), "{line}");
    }
}
