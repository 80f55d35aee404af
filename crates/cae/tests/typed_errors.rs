//! The library's public functions fail with typed errors (`thiserror` enums and structs), never
//! with a bare `String`: a caller (the CLI, the server, a user's program) can then tell one
//! failure from another by its type, and the server maps kinds to HTTP statuses without parsing
//! messages. The check reads the sources: a `pub fn` whose signature returns
//! `Result<_, String>`, or a public `FromStr` with `type Err = String`, fails here by file and
//! line. Private helpers may still build messages as strings before a public function wraps
//! them in its error type.

mod common;

use common::rust_files;
use std::fs;
use std::path::Path;

/// The signature of the function starting at `lines[start]`: its lines up to the opening `{`
/// (or `;`), joined.
fn signature(lines: &[&str], start: usize) -> String {
    let mut text = String::new();
    for line in &lines[start..] {
        text.push_str(line.trim());
        text.push(' ');
        if line.contains('{') || line.trim_end().ends_with(';') {
            break;
        }
    }
    text
}

/// True for `Result<…, String>` at the end of a signature, whatever the nesting of `…`.
fn returns_string_error(sig: &str) -> bool {
    let Some(arrow) = sig.rfind("->") else {
        return false;
    };
    let ret: String = sig[arrow..]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    ret.contains("Result<") && (ret.contains(",String>{") || ret.contains(",String>;"))
}

/// `file:line: text` of every public function or `FromStr` that fails with a `String`, in this
/// library and in the server's (`cae-serve`, a library the binary only starts).
fn string_errors() -> Vec<String> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in ["cae", "cae-serve"] {
        found.extend(string_errors_in(&crates.join(krate).join("src"), krate));
    }
    found
}

fn string_errors_in(src: &Path, krate: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("readable source");
        // Unit tests at the end of a file are not API.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let public_fn = trimmed.starts_with("pub fn ") || trimmed.starts_with("pub async fn ");
            let string_err = trimmed.starts_with("type Err = String");
            if (public_fn && returns_string_error(&signature(&lines, i))) || string_err {
                let name = file.strip_prefix(src).expect("under src").display();
                found.push(format!("{krate}/src/{name}:{}: {}", i + 1, trimmed));
            }
        }
    }
    found
}

#[test]
fn public_functions_return_typed_errors_not_strings() {
    let found = string_errors();
    assert!(
        found.is_empty(),
        "public functions failing with a bare String (give them a thiserror type):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_string_error_across_lines() {
    let lines = [
        "pub fn measure(",
        "    spec: &ValidSpec,",
        ") -> Result<Vec<(usize, f32)>, String> {",
    ];
    assert!(returns_string_error(&signature(&lines, 0)));
    let typed = ["pub fn f(x: u8) -> Result<Vec<u8>, NpyShapeError> {"];
    assert!(!returns_string_error(&signature(&typed, 0)));
    let names = ["pub fn names() -> Result<Vec<String>, DataError> {"];
    assert!(!returns_string_error(&signature(&names, 0)));
}
