//! The library's modules depend downward only (ARCHITECTURE.md, "Layers"): each top-level
//! module of `src/` sits in one layer of [`LAYERS`] and may name (`crate::x`) only modules of
//! lower layers. A module that names one of its own layer or above, or a module missing from
//! the table, fails this test, so an arrow pointing up is caught before review.
//!
//! `cargo test --test layers -- --nocapture` prints the import graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. Siblings in one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    // Leaves: generated bindings, shared enums, the log filter.
    &["contracts", "dialect", "direction", "logging"],
    &["config"],
    &["chain"],
    &["store", "votes"],
    // The families components count into (watcher, auditor, tx manager, bridge watch) and the
    // scrape-time reads of the chain client's endpoint stats; the chain client reports
    // reachability through `chain::ReachSink`, which metrics implements.
    &["metrics"],
    &["txmgr"],
    // Turns to vote (planner, recovery; the auditor reports silent seats); one CLI transaction.
    &["seats", "admin_tx"],
    // One direction's tasks.
    &["watcher", "planner", "recovery", "auditor"],
    // `bridge_check/watch.rs` publishes its verdicts as metrics.
    &["http", "bridge_check"],
    &["rotation"],
    &["admin"],
    &["agent"],
];

/// Files of the library crate that are not modules of it (`main.rs` and `cli/` are the
/// binary: the edge, allowed to use every module).
const NOT_LIBRARY: &[&str] = &["lib", "main", "cli"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level modules of `src/`, each with its files.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src()).expect("read src/") {
        let path = entry.expect("src/ entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if NOT_LIBRARY.contains(&name.as_str()) {
            continue;
        }
        let files = if path.is_dir() {
            rust_files(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            vec![path]
        } else {
            continue;
        };
        out.insert(name, files);
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read module dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The top-level modules `text` names as `crate::x` or in `crate::{x, y::z}`, comments left out.
fn names(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = closing_brace(group);
            for item in split_top_level(&group[..end]) {
                out.insert(first_segment(item));
            }
            rest = &group[end..];
        } else {
            out.insert(first_segment(rest));
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

fn closing_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn first_segment(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Module → the other top-level modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    modules()
        .into_iter()
        .map(|(name, files)| {
            let mut deps = BTreeSet::new();
            for f in files {
                let text = std::fs::read_to_string(&f).expect("read source");
                deps.extend(names(&text));
            }
            deps.remove(&name);
            (name, deps)
        })
        .collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn modules_import_lower_layers_only() {
    let graph = graph();
    let mut problems = Vec::new();
    for (module, deps) in &graph {
        let list: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{module} -> {}", list.join(" "));
        let Some(own) = layer_of(module) else {
            problems.push(format!(
                "src/{module}: not in tests/layers.rs LAYERS; place it in its layer"
            ));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(l) if l < own => {}
                Some(l) => problems.push(format!(
                    "src/{module} (layer {own}) imports crate::{dep} (layer {l}): an arrow \
                     pointing {}",
                    if l == own { "sideways" } else { "up" }
                )),
                // A module missing from the table is reported as the importer above.
                None => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_layer_entry_is_a_module() {
    let graph = graph();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            graph.contains_key(*module),
            "tests/layers.rs names {module}, which src/ does not have"
        );
    }
}

#[test]
fn names_reads_paths_groups_and_skips_comments() {
    let text = "use crate::chain::ChainClient;\n\
                use crate::{store::Store, votes};\n\
                // crate::agent is mentioned in a comment only\n\
                let x = crate::txmgr::ActiveKey::new(t); // crate::admin\n";
    let got: Vec<String> = names(text).into_iter().collect();
    assert_eq!(got, ["chain", "store", "txmgr", "votes"]);
}
