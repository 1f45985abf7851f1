//! `docs/config-reference.md` is complete and true:
//!
//! 1. every key the config schema accepts has a row, and every enum value of a key is named in
//!    its row; the key list is not written here but read from the code: the loader is asked
//!    about an unknown key `__probe__` in each table and tells which keys it expected (serde's
//!    `deny_unknown_fields` message), recursively, including each signer backend's keys;
//! 2. every row names a key that exists (no stale rows);
//! 3. every default written as a TOML literal is the real default: a minimal config with the
//!    key set to it loads to exactly the same configuration as without it.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bridge_agent::config::{self, AgentConfig, Problem};

const DOC: &str = "docs/config-reference.md";
const PROBE: &str = "__probe__";

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn problems(text: &str) -> Vec<Problem> {
    match config::load_str(text, Path::new("probe.toml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

/// The backticked names after "expected" in a serde message:
/// "unknown field `x`, expected one of `a`, `b`" → [a, b].
fn expected_names(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// What the schema says about a value placed at a key.
#[derive(Debug, PartialEq)]
enum Shape {
    /// A table with these keys.
    Table(Vec<String>),
    /// A table tagged by `tag` (`backend`), with these variants.
    Tagged(String, Vec<String>),
    /// One of these string values.
    Enum(Vec<String>),
    /// Anything else: a plain value.
    Leaf,
}

/// Puts `value` at dotted `path` (a key in a table) and asks the loader about it.
fn probe(path: &str, value: &str) -> Shape {
    let (table, key) = path.rsplit_once('.').expect("a key inside a table");
    let text = format!("[{table}]\n{key} = {value}\n");
    shape_of(&problems(&text), path)
}

/// Asks the loader about an unknown key in table `table` (which has `extra` lines, e.g. a tag).
fn probe_table(table: &str, extra: &str) -> Shape {
    let text = format!("[{table}]\n{extra}{PROBE} = 1\n");
    shape_of(&problems(&text), table)
}

fn shape_of(problems: &[Problem], path: &str) -> Shape {
    // `__probe__` is in one place only, so a message naming it is about the probe, whatever
    // its path (inside a tagged enum serde buffers the table and loses the exact position).
    for p in problems {
        let m = &p.message;
        if m.starts_with(&format!("unknown field `{PROBE}`")) {
            return Shape::Table(expected_names(m));
        }
        if m.contains(&format!("unknown variant `{PROBE}`")) {
            return Shape::Enum(expected_names(m));
        }
        // A missing tag (`backend`): the loader names it in the path.
        if m == "is required but missing"
            && let Some(tag) = p.path.strip_prefix(&format!("{path}."))
            && !tag.contains('.')
        {
            let Shape::Enum(variants) = probe(&format!("{path}.{tag}"), &format!("\"{PROBE}\""))
            else {
                return Shape::Leaf;
            };
            return Shape::Tagged(tag.to_owned(), variants);
        }
        if m.starts_with("unknown PIN source") && p.path.starts_with(path) {
            // The PIN is checked before serde (so that a PIN is never echoed): its forms.
            return Shape::Table(vec!["env".into(), "file".into()]);
        }
    }
    Shape::Leaf
}

/// One documented key: its path as the doc writes it, with enum values to be named.
#[derive(Debug, Default)]
struct Schema {
    /// Doc path (`<chain>.fees.mode`, `signer.pin`) → values its row must name.
    keys: BTreeMap<String, BTreeSet<String>>,
}

/// The doc's spelling of a schema path: `parent`/`child` are `<chain>`, and a chain's own
/// signer (`<chain>.signer.…`) is documented once, with the top-level `[signer]`.
fn doc_path(path: &str) -> String {
    let p = path
        .strip_prefix("parent.")
        .or_else(|| path.strip_prefix("child."))
        .map_or_else(|| path.to_owned(), |rest| format!("<chain>.{rest}"));
    match p.strip_prefix("<chain>.signer.") {
        Some(rest) => format!("signer.{rest}"),
        None => p,
    }
}

fn walk(schema: &mut Schema, path: &str, shape: Shape) {
    match shape {
        Shape::Leaf => {
            schema.keys.entry(doc_path(path)).or_default();
        }
        Shape::Enum(values) => {
            schema
                .keys
                .entry(doc_path(path))
                .or_default()
                .extend(values);
        }
        Shape::Table(keys) => {
            // A nested table (`<chain>.fees`, `signer.retry`) has a row of its own.
            if path.contains('.') {
                schema.keys.entry(doc_path(path)).or_default();
            }
            // `{ env = … }` / `{ file = … }`: a secret's or URL's source, named in its row.
            if keys == ["env", "file"] {
                schema.keys.entry(doc_path(path)).or_default().extend(keys);
                return;
            }
            for k in keys {
                let child = format!("{path}.{k}");
                let shape = probe(&child, &format!("{{ {PROBE} = 1 }}"));
                walk(schema, &child, shape);
            }
        }
        Shape::Tagged(tag, variants) => {
            if path.contains('.') {
                schema.keys.entry(doc_path(path)).or_default();
            }
            schema
                .keys
                .entry(doc_path(&format!("{path}.{tag}")))
                .or_default()
                .extend(variants.iter().cloned());
            for v in variants {
                let tagged = format!("{tag} = \"{v}\"\n");
                let Shape::Table(keys) = probe_table(path, &tagged) else {
                    panic!("{path} with {tag} = {v:?}: no key list");
                };
                for k in keys.into_iter().filter(|k| *k != tag) {
                    let child = format!("{path}.{k}");
                    // Inline, so the tag stays with the probe.
                    let (table, key) = child.rsplit_once('.').unwrap();
                    let text = format!("[{table}]\n{tagged}{key} = {{ {PROBE} = 1 }}\n");
                    let shape = shape_of(&problems(&text), &child);
                    walk(schema, &child, shape);
                }
            }
        }
    }
}

/// Every key of the schema, read from the code.
fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let top = problems(&format!("{PROBE} = 1\n"));
        let message = &top
            .iter()
            .find(|p| p.path == PROBE)
            .expect("an unknown top-level key is reported")
            .message;
        let tables: Vec<String> = message
            .split('[')
            .skip(1)
            .filter_map(|s| s.split(']').next())
            .map(str::to_owned)
            .collect();
        assert!(tables.len() >= 5, "tables from {message:?}: {tables:?}");
        let mut schema = Schema::default();
        for t in tables {
            let shape = probe_table(&t, "");
            assert_ne!(shape, Shape::Leaf, "[{t}]: no key list");
            walk(&mut schema, &t, shape);
        }
        schema
    })
}

/// The doc's rows: backticked key in the first cell → (the whole row, the section heading).
fn rows() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut heading = String::new();
    for line in doc().lines() {
        if line.starts_with('#') {
            heading = line.to_owned();
            continue;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        // Config keys are dotted; the environment table's rows are not keys.
        let Some((key, _)) = cell.split_once('`').filter(|(k, _)| k.contains('.')) else {
            continue;
        };
        out.entry(key.to_owned())
            .or_default()
            .push((line.to_owned(), heading.clone()));
    }
    out
}

#[test]
fn the_schema_walk_finds_the_keys_we_know() {
    // Guards the walk itself: if serde's messages changed and nothing were found, the other
    // tests would pass vacuously.
    let keys = &schema().keys;
    for k in [
        "agent.data_dir",
        "http.listen",
        "log.format",
        "recovery.interval_secs",
        "signer.backend",
        "signer.module",
        "signer.pin",
        "signer.region",
        "signer.retry.max_attempts",
        "<chain>.rpc",
        "<chain>.ws",
        "<chain>.fees.bump_percent",
        "<chain>.signer",
    ] {
        assert!(keys.contains_key(k), "{k} not found by the walk: {keys:#?}");
    }
    assert!(keys["log.format"].contains("json"), "{keys:#?}");
    assert!(keys["signer.backend"].contains("aws-kms"), "{keys:#?}");
    assert!(keys.len() >= 35, "{keys:#?}");
}

#[test]
fn every_key_is_documented_with_its_values() {
    let rows = rows();
    let mut missing = Vec::new();
    for (key, values) in &schema().keys {
        match rows.get(key) {
            None => missing.push(key.clone()),
            Some(found) => {
                for v in values {
                    assert!(
                        found.iter().any(|(row, _)| row.contains(&format!("`{v}`"))
                            || row.contains(&format!("\"{v}\""))
                            || row.contains(&format!("{{ {v} = "))),
                        "{DOC}: the row of `{key}` does not name the value {v:?}"
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{DOC} lacks a row for: {missing:#?}\n(add `| `key` | type | default | meaning |` rows)"
    );
}

#[test]
fn every_row_is_a_real_key() {
    let stale: Vec<String> = rows()
        .into_keys()
        .filter(|k| !schema().keys.contains_key(k))
        .collect();
    assert!(
        stale.is_empty(),
        "{DOC} documents keys the schema does not have: {stale:?}"
    );
}

// ---------------------------------------------------------------- defaults

fn pin_file() -> &'static PathBuf {
    static PIN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n").unwrap();
        (dir, path)
    })
    .1
}

/// The smallest valid config: only required keys.
fn minimal(aws: bool) -> String {
    let signer = if aws {
        "backend = \"aws-kms\"\nkey_id = \"alias/op\"\n".to_owned()
    } else {
        format!(
            "backend = \"pkcs11\"\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
             token_label = \"t\"\nkey_label = \"k\"\npin = {{ file = \"{}\" }}\n",
            pin_file().display()
        )
    };
    format!(
        "[agent]\ndata_dir = \"/var/lib/bridge-agent\"\n\n[signer]\n{signer}\n\
         [parent]\nchain_id = 1001\nrpc = [\"http://127.0.0.1:8545\"]\n\
         bridge = \"0x00000000000000000000000000000000000000b1\"\n\n\
         [child]\nchain_id = 1002\nrpc = [\"http://127.0.0.1:8546\"]\n\
         bridge = \"0x00000000000000000000000000000000000000b2\"\n"
    )
}

/// `text` with `key = value` set at dotted `path` (tables created as needed).
fn with_key(text: &str, path: &str, value: &str) -> String {
    let (table, key) = path.rsplit_once('.').unwrap();
    let header = format!("[{table}]\n");
    match text.find(&header) {
        Some(at) => {
            let at = at + header.len();
            format!("{}{key} = {value}\n{}", &text[..at], &text[at..])
        }
        None => format!("{text}\n{header}{key} = {value}\n"),
    }
}

fn load(text: &str) -> AgentConfig {
    config::load_str(text, Path::new("defaults.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn documented_defaults_are_the_real_defaults() {
    let mut checked = 0;
    for (key, found) in rows() {
        for (row, heading) in found {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // | `key` | type | default | meaning |
            let Some(default) = cells.get(3) else {
                continue;
            };
            let Some(literal) = default
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .filter(|d| !d.contains('`'))
            else {
                continue;
            };
            let aws = heading.contains("aws-kms");
            let paths: Vec<String> = match key.strip_prefix("<chain>.") {
                Some(rest) => vec![format!("parent.{rest}"), format!("child.{rest}")],
                None => vec![key.clone()],
            };
            for path in paths {
                let base = minimal(aws);
                let explicit = with_key(&base, &path, literal);
                assert_eq!(
                    load(&explicit),
                    load(&base),
                    "{DOC}: `{path}` is documented with default `{literal}`, but setting it \
                     changes the configuration"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} defaults checked");
}
