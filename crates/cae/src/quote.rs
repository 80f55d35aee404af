//! User input echoed in messages. An error names what the user wrote (`unknown activation
//! 'swish'`), but what they wrote can be a 50 MB string from a file, or hold a newline; echoed
//! whole, one error became a 52-million-character line. Every message that quotes user input
//! goes through [`quote`], which keeps the line short and on one line.

use std::fmt;

/// Characters of the input shown before it is cut.
pub const SHOWN: usize = 60;

/// `text` in single quotes for a message: control characters escaped (`\n`), and anything past
/// [`SHOWN`] characters cut, with the full length said: `'aaaa…' (52428800 characters)`.
pub fn quote(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// A setting's text that names no accepted value (`--keep sometimes`, `activation 'swish'`):
/// the type every `FromStr` of the library's settings fails with, so that a caller can tell what
/// was refused from why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {}: {problem}", quote(.given))]
pub struct InvalidValue {
    /// What was being read, as the message starts (`unknown loss`, `--keep`).
    pub what: &'static str,
    /// The text as given.
    pub given: String,
    /// What is wrong and what is accepted.
    pub problem: String,
}

impl InvalidValue {
    pub fn new(what: &'static str, given: &str, problem: impl Into<String>) -> InvalidValue {
        InvalidValue {
            what,
            given: given.to_string(),
            problem: problem.into(),
        }
    }
}

/// [`quote`]'s result; formats without copying the input.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}", Shown(self.0))?;
        match self.0.chars().nth(SHOWN) {
            None => write!(f, "'"),
            Some(_) => write!(f, "…' ({} characters)", self.0.chars().count()),
        }
    }
}

/// The first [`SHOWN`] characters, control characters escaped.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(SHOWN) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// `message` with every quoted run (in `"…"` or `` `…` ``) longer than [`SHOWN`] characters
/// cut like [`quote`] cuts: for messages made by other libraries, which quote input whole
/// (serde's `invalid type: string "…", expected usize`, `` unknown field `…` ``). Escaped
/// quotes (`\"`) inside a double-quoted run are kept.
pub fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let mark = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..open + 1]);
        let after = &rest[open + 1..];
        let mut escaped = false;
        let close = after.char_indices().find_map(|(i, c)| {
            let end = c == mark && !escaped;
            escaped = mark == '"' && c == '\\' && !escaped;
            end.then_some(i)
        });
        let Some(close) = close else {
            rest = after;
            break;
        };
        let inner = &after[..close];
        let n = inner.chars().count();
        if n > SHOWN {
            out.extend(inner.chars().take(SHOWN));
            out.push_str(&format!("…{mark} ({n} characters)"));
        } else {
            out.push_str(inner);
            out.push(mark);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `line` cut to at most about `max` characters by taking out its middle (`… (N characters
/// cut) …`), for the last place a message is printed: the start says where, the end usually
/// why (`cannot read: File name too long`), whatever lies between.
pub fn cut_line(line: &str, max: usize) -> String {
    let n = line.chars().count();
    if n <= max {
        return line.to_string();
    }
    let (head, tail) = (max / 2, max - max / 2);
    let start: String = line.chars().take(head).collect();
    let end: String = line.chars().skip(n - tail).collect();
    format!("{start} … ({} characters cut) … {end}", n - head - tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(quote("swish").to_string(), "'swish'");
        assert_eq!(quote("").to_string(), "''");
        assert_eq!(quote(&"a".repeat(SHOWN)).to_string().len(), SHOWN + 2);
    }

    #[test]
    fn a_50_mb_input_is_cut_with_its_length_and_newlines_are_escaped() {
        let huge = "x".repeat(50 << 20);
        let q = quote(&huge).to_string();
        assert!(q.len() < 120, "{q}");
        assert!(q.ends_with("…' (52428800 characters)"), "{q}");
        assert_eq!(quote("a\nb").to_string(), "'a\\nb'");
        // Multi-byte characters are cut on a character boundary.
        let wide = "é".repeat(100);
        assert!(quote(&wide).to_string().contains("(100 characters)"));
    }

    #[test]
    fn long_double_quoted_runs_in_other_libraries_messages_are_cut() {
        let long = "y".repeat(1000);
        let m = format!("line 3: invalid type: string \"{long}\", expected usize");
        let short = shorten_quoted(&m);
        assert!(short.len() < 150, "{short}");
        assert!(
            short.ends_with("…\" (1000 characters), expected usize"),
            "{short}"
        );
        let kept = "a \"short\" one, \"with \\\" escaped\" and \"unclosed";
        assert_eq!(shorten_quoted(kept), kept);
        let field = format!("unknown field `{long}`, expected `epochs`");
        assert_eq!(
            shorten_quoted(&field),
            format!(
                "unknown field `{}…` (1000 characters), expected `epochs`",
                "y".repeat(SHOWN)
            )
        );
    }

    #[test]
    fn cut_line_keeps_short_lines_and_the_ends_of_long_ones() {
        assert_eq!(cut_line("short", 10), "short");
        assert_eq!(cut_line("abcdefgh", 4), "ab … (4 characters cut) … gh");
        assert_eq!(cut_line("éééé", 2), "é … (2 characters cut) … é");
    }
}
