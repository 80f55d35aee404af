//! The `.npy` header: a Python dict literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (200, 25, 25), }`.
//!
//! A small recursive-descent reader for exactly the literals NumPy writes (strings, True/False,
//! integers, tuples and lists), so no Python-literal dependency is needed.

/// Deepest nesting of tuples and lists accepted: NumPy writes 1 (the shape) to 3 (structured
/// dtypes); without a bound a header of nested brackets overflows the stack.
const MAX_DEPTH: usize = 16;

/// The three keys NumPy guarantees.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// Dtype string, e.g. `<f8`.
    pub descr: String,
    /// True when the data is column-major.
    pub fortran_order: bool,
    /// Array dimensions.
    pub shape: Vec<usize>,
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    Seq(Vec<Value>),
}

/// Parses a header dict; the error says what was expected where.
pub(super) fn parse(text: &str) -> Result<Header, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = match p.value()? {
            Value::Str(k) => k,
            other => return Err(format!("expected a string key, found {other:?}")),
        };
        p.skip_ws();
        p.expect(b':')?;
        let value = p.value()?;
        match (key.as_str(), value) {
            ("descr", Value::Str(d)) => descr = Some(d),
            ("descr", Value::Seq(_)) => {
                return Err("structured (record) dtypes are not supported".to_string());
            }
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Seq(items)) => {
                let dims = items
                    .into_iter()
                    .map(|v| match v {
                        Value::Int(i) => {
                            usize::try_from(i).map_err(|_| "dimension too large".to_string())
                        }
                        other => Err(format!("shape holds {other:?}, not an integer")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shape = Some(dims);
            }
            (k @ ("descr" | "fortran_order" | "shape"), v) => {
                return Err(format!("unexpected value {v:?} for '{k}'"));
            }
            _ => {}
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or("missing 'descr'")?,
        fortran_order: fortran.ok_or("missing 'fortran_order'")?,
        shape: shape.ok_or("missing 'shape'")?,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    /// Tuples and lists open around `pos`.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {}, found {}",
                c as char,
                self.pos,
                self.peek()
                    .map_or("the end".to_string(), |c| format!("'{}'", c as char))
            ))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(|c| c != q) {
                    self.pos += 1;
                }
                let s = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.expect(q)?;
                Ok(Value::Str(s))
            }
            Some(open @ (b'(' | b'[')) => {
                if self.depth == MAX_DEPTH {
                    return Err(format!(
                        "tuples or lists nested too deeply at byte {} (more than {MAX_DEPTH} levels)",
                        self.pos
                    ));
                }
                self.pos += 1;
                self.depth += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value()?);
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.skip_ws();
                        self.expect(close)?;
                        break;
                    }
                }
                self.depth -= 1;
                Ok(Value::Seq(items))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                let v = digits
                    .parse()
                    .map_err(|_| format!("integer {digits} is too large"))?;
                self.eat(b'L'); // Python 2 long suffix
                Ok(Value::Int(v))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    w => Err(format!(
                        "unexpected word '{}' at byte {start}",
                        String::from_utf8_lossy(w)
                    )),
                }
            }
            Some(c) => Err(format!("unexpected '{}' at byte {}", c as char, self.pos)),
            None => Err("the header ends early".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_headers() {
        let h = parse("{'descr': '<f8', 'fortran_order': False, 'shape': (200, 25, 25), }    \n")
            .unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f8".into(),
                fortran_order: false,
                shape: vec![200, 25, 25]
            }
        );
        let h = parse("{\"shape\": (3L,), \"fortran_order\": True, \"descr\": \"|u1\"}").unwrap();
        assert_eq!(h.shape, vec![3]);
        assert!(h.fortran_order);
        assert_eq!(h.descr, "|u1");
    }

    #[test]
    fn rejects_broken_headers() {
        assert!(
            parse("{'descr': '<f8', 'shape': (2, 3)}")
                .unwrap_err()
                .contains("fortran_order")
        );
        assert!(parse("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)").is_err());
        assert!(parse("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,)}").is_err());
        assert!(
            parse("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}")
                .unwrap_err()
                .contains("structured")
        );
        assert!(parse("").is_err());
        assert!(parse("{'shape': ('a',), 'descr': '<f8', 'fortran_order': False}").is_err());
    }

    #[test]
    fn bounds_nesting_without_recursing_deeply() {
        // Found by the npy fuzz target: a header of thousands of nested brackets overflowed the
        // stack (each level was one recursive call).
        let deep = format!(
            "{{'shape': {}1{}}}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(parse(&deep).unwrap_err().contains("nested too deeply"));
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (((((2,),),),),)}";
        assert!(parse(ok).unwrap_err().contains("shape holds"));
    }
}
