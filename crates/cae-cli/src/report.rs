//! The one place an error reaches the user: `error: ` and one line. The line is the error's
//! chain, outermost first, joined by `: ` — but a cause whose text its parent already printed
//! is left out (an error that shows its `source` in its own message, as `cannot write: {source}`
//! does, would otherwise end `(os error 28): No space left on device (os error 28)`). Line
//! breaks become spaces, long quoted values are cut, and a line still over [`MAX_LINE`]
//! characters loses its middle, whatever it holds.

use cae::quote::{cut_line, shorten_quoted};

/// Longest error line printed, in characters.
pub const MAX_LINE: usize = 2000;

/// `e` and its causes as one line.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    let flat: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut_line(&shorten_quoted(&flat), MAX_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the library's write errors are: the source in the message and as `source()`.
    #[derive(Debug)]
    struct Write {
        path: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for Write {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: cannot write: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Write {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn error_chains_repeat_the_os_text_only_once() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(Write {
            path: "run/best.bpk".into(),
            source: full,
        });
        let line = error_line(&e);
        assert_eq!(line.matches("(os error 28)").count(), 1, "{line}");
        assert!(line.starts_with("run/best.bpk: cannot write: "), "{line}");
        // A context whose cause it does not repeat keeps the cause.
        let e = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("reading x");
        assert_eq!(
            error_line(&e),
            format!("reading x: {}", std::io::Error::from_raw_os_error(2))
        );
    }

    #[test]
    fn an_error_line_is_one_line_and_bounded() {
        let e = anyhow::anyhow!("a\nb {}", "x".repeat(10_000));
        let line = error_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.chars().count() < MAX_LINE + 40, "{}", line.len());
    }
}
