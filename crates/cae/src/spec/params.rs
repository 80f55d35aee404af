//! Spec parameters: a spec may declare `[params]` with defaults (`n = 32`) and use them in any
//! value as `"$n"` or an arithmetic expression `"$(2*k+1)"`. Users override them with
//! `--param k=2`. The input's `channels`, `height` and `width` are always defined, so one
//! preset fits 1×28×28 and 3×32×32 alike.

use crate::quote::quote;
use std::collections::BTreeMap;

/// Replaces every `"$name"` / `"$(expr)"` string inside `value` by its number.
pub(crate) fn substitute(
    value: &mut toml::Value,
    params: &BTreeMap<String, f64>,
) -> Result<(), String> {
    match value {
        toml::Value::String(s) if s.starts_with('$') => {
            let expr = s[1..].trim();
            let number = eval(expr, params).map_err(|e| format!("in {}: {e}", quote(s)))?;
            *value = if number.fract() == 0.0 && number.abs() < 1e15 {
                toml::Value::Integer(number as i64)
            } else {
                toml::Value::Float(number)
            };
        }
        toml::Value::Array(items) => {
            for item in items {
                substitute(item, params)?;
            }
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                substitute(item, params)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Longest expression, in characters: far beyond any real one (`2*k+1`), short enough that
/// tokenizing cannot take much memory.
const MAX_LEN: usize = 1000;

/// Deepest nesting of parentheses and signs. The parser recurses once per level, so without
/// a bound 40 KB of `-` or 50,000 nested parentheses overflowed the stack (a crash, not an
/// error).
const MAX_DEPTH: usize = 64;

/// Evaluates `+ - * /` expressions with parentheses over numbers and parameter names.
pub(crate) fn eval(expr: &str, params: &BTreeMap<String, f64>) -> Result<f64, String> {
    let len = expr.chars().count();
    if len > MAX_LEN {
        return Err(format!(
            "the expression is {len} characters long; at most {MAX_LEN} are accepted"
        ));
    }
    let tokens = tokenize(expr)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
        params,
    };
    let v = parser.sum()?;
    if parser.pos != tokens.len() {
        return Err(format!(
            "unexpected {}",
            quote(&tokens[parser.pos].to_string())
        ));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Name(String),
    Op(char),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Num(n) => write!(f, "{n}"),
            Token::Name(n) => write!(f, "{n}"),
            Token::Op(c) => write!(f, "{c}"),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == 'e')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Num(text.parse().map_err(|_| {
                format!("bad number {text}", text = quote(&text))
            })?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {}", quote(&c.to_string())));
        }
    }
    if out.is_empty() {
        return Err("empty expression".into());
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// Open parentheses and signs around the current token.
    depth: usize,
    params: &'a BTreeMap<String, f64>,
}

impl Parser<'_> {
    /// One level deeper (a parenthesis or a sign), refused past [`MAX_DEPTH`].
    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "parentheses and signs nest deeper than {MAX_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.tokens.get(self.pos) {
            self.pos += 1;
            let rhs = self.product()?;
            v = if *op == '+' { v + rhs } else { v - rhs };
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.atom()?;
        while let Some(Token::Op(op @ ('*' | '/'))) = self.tokens.get(self.pos) {
            self.pos += 1;
            let rhs = self.atom()?;
            if *op == '/' && rhs == 0.0 {
                return Err("division by zero".into());
            }
            v = if *op == '*' { v * rhs } else { v / rhs };
        }
        Ok(v)
    }

    fn atom(&mut self) -> Result<f64, String> {
        let token = self
            .tokens
            .get(self.pos)
            .ok_or("expression ends too early")?;
        self.pos += 1;
        match token {
            Token::Num(n) => Ok(*n),
            Token::Name(name) => self.params.get(name).copied().ok_or_else(|| {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                format!(
                    "unknown parameter {name} (defined: {})",
                    known.join(", "),
                    name = quote(name)
                )
            }),
            Token::Op('-') => {
                self.descend()?;
                let v = -self.atom()?;
                self.depth -= 1;
                Ok(v)
            }
            Token::Op('(') => {
                self.descend()?;
                let v = self.sum()?;
                self.depth -= 1;
                match self.tokens.get(self.pos) {
                    Some(Token::Op(')')) => {
                        self.pos += 1;
                        Ok(v)
                    }
                    _ => Err("missing ')'".into()),
                }
            }
            other => Err(format!("unexpected {}", quote(&other.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, f64> {
        BTreeMap::from([("k".to_string(), 3.0), ("n".to_string(), 32.0)])
    }

    #[test]
    fn evaluates_arithmetic_with_precedence() {
        assert_eq!(eval("2*k+1", &params()), Ok(7.0));
        assert_eq!(eval("2*(k+1)", &params()), Ok(8.0));
        assert_eq!(eval("n/4 - -1", &params()), Ok(9.0));
        assert!(
            eval("m+1", &params())
                .unwrap_err()
                .contains("unknown parameter 'm'")
        );
        assert!(eval("(k", &params()).is_err());
        assert!(eval("k/0", &params()).is_err());
        assert!(eval("k k", &params()).is_err());
    }

    #[test]
    fn deep_nesting_and_long_expressions_are_errors_not_stack_overflows() {
        let deep = format!("{}1{}", "(".repeat(65), ")".repeat(65));
        let e = eval(&deep, &params()).unwrap_err();
        assert!(e.contains("nest deeper than 64 levels"), "{e}");
        let e = eval(&format!("{}1", "-".repeat(65)), &params()).unwrap_err();
        assert!(e.contains("nest deeper than 64 levels"), "{e}");
        // 64 levels are fine, and so are signs and parentheses side by side.
        let ok = format!("{}k{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(eval(&ok, &params()), Ok(3.0));
        assert_eq!(
            eval("-(1)+".repeat(100).trim_end_matches('+'), &params()),
            Ok(-100.0)
        );
        // The crashing inputs of the report: 40 KB of '-' and 50,000 nested parentheses.
        for huge in [
            format!("{}1", "-".repeat(40_000)),
            format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000)),
        ] {
            let e = eval(&huge, &params()).unwrap_err();
            assert!(e.contains("at most 1000"), "{e}");
        }
    }

    #[test]
    fn substitutes_strings_in_nested_tables() {
        let mut v: toml::Value = toml::from_str(
            "a = \"$n\"\nb = [\"$(2*k+1)\", 4]\nc = \"plain\"\n[t]\nd = \"$(n/64)\"",
        )
        .unwrap();
        substitute(&mut v, &params()).unwrap();
        assert_eq!(v["a"].as_integer(), Some(32));
        assert_eq!(v["b"][0].as_integer(), Some(7));
        assert_eq!(v["c"].as_str(), Some("plain"));
        assert_eq!(v["t"]["d"].as_float(), Some(0.5));
    }
}
