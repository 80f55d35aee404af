//! One size convention in messages: heights before widths (`HxW`), as `--resize HxW` and the
//! `CxHxW` of image shapes are written. Issue 16 found errors mixing `WxH` and `HxW`; the check
//! reads the sources, so a message that says `WxH` again fails here by file and line.

mod common;

use common::rust_files;
use std::fs;
use std::path::Path;

#[test]
fn sizes_in_messages_are_height_by_width() {
    let mut files = Vec::new();
    for crate_dir in ["", "../cae-cli", "../cae-serve"] {
        rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(crate_dir)
                .join("src"),
            &mut files,
        );
    }
    let found: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = fs::read_to_string(file).expect("readable source");
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("(WxH)") || l.contains("WxH)"))
                .map(|(i, l)| format!("{}:{}: {}", file.display(), i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "messages with WxH sizes:\n{}",
        found.join("\n")
    );
}
