//! The library's top-level modules form layers: no module imports one that imports it back,
//! directly or through others (e.g. `run` owns the run contract and `train` uses it, never the
//! reverse). The check reads the sources, so a new `use crate::…` that closes a loop fails here
//! with the loop's modules named.

use std::collections::{BTreeMap, BTreeSet};
mod common;

use common::rust_files;
use std::fs;
use std::path::Path;

/// The top-level modules named as `crate::NAME` in code (comment lines skipped).
fn imported_modules(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// Module name → the other top-level modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a file name");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable source");
        let imports = graph.entry(module.clone()).or_default();
        imports.extend(imported_modules(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// Every module `start` imports, directly or through others.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_string()];
    while let Some(at) = todo.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The groups of modules that import each other (directly or through others): the strongly
/// connected components with more than one member.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<BTreeSet<String>> {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reachable(graph, m))).collect();
    graph
        .keys()
        .filter(|m| reach[m].contains(*m))
        .map(|m| {
            reach[m]
                .iter()
                .filter(|o| reach.get(o).is_some_and(|r| r.contains(m)))
                .cloned()
                .collect::<BTreeSet<String>>()
        })
        .collect()
}

/// Import loops known and accepted: none. The last one (`run`'s read-back side used `anomaly`,
/// whose tiled scoring and defect writer use `run`) went when the anomaly sets moved to
/// `anomaly::run_data` and `cae info`'s record to `info` (issue 16, step 4); a new loop fails.
const KNOWN_LOOPS: [&[&str]; 0] = [];

#[test]
fn no_new_import_loop_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.contains_key("run") && graph.contains_key("train"));
    let found = cycles(&graph);
    let known: BTreeSet<BTreeSet<String>> = KNOWN_LOOPS
        .iter()
        .map(|l| l.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(
        found, known,
        "module import loops (each a group of modules that import each other)"
    );
    // The run contract sits below everything that reads a run back.
    for above in ["anomaly", "denoise", "output", "info", "train"] {
        assert!(
            !reachable(&graph, "run").contains(above),
            "run imports {above} (directly or through others)"
        );
    }
    // `train` uses the run contract and `anomaly`, and neither uses it back.
    for module in ["run", "anomaly", "data", "model", "spec"] {
        assert!(
            !reachable(&graph, module).contains("train"),
            "{module} imports train (directly or through others)"
        );
    }
}

#[test]
fn the_loop_check_finds_a_loop() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    graph.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    let abc: BTreeSet<String> = ["a", "b", "c"].iter().map(|m| m.to_string()).collect();
    assert_eq!(cycles(&graph), BTreeSet::from([abc]));
    let imports = imported_modules(
        "use crate::run::RunDir;\n// crate::train\nlet x = crate::data::load(); // crate::anomaly",
    );
    assert_eq!(
        imports,
        BTreeSet::from(["run".to_string(), "data".to_string()])
    );
}
