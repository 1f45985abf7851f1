//! Reading the file: TOML syntax, then each top-level table deserialized on its own so that
//! mistakes in different tables are all reported, then validation. Spans from the parser give
//! every problem its dotted path and its line.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{ConfigError, Location, Problem};
use super::schema::{
    AgentSection, ChainSection, HttpSection, LogSection, RecoverySection, StoreSection,
};
use super::validate::{self, Sections};
use super::{AgentConfig, Secrets};
use bridge_signer::SignerConfig;

/// The top-level tables, in the order they are documented.
const SECTIONS: [&str; 8] = [
    "agent", "http", "log", "recovery", "store", "signer", "parent", "child",
];

/// Reads, parses and checks the config file at `path`, including that its secrets can be read
/// now. The error lists every problem found.
pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
    load_with(path, Secrets::Check)
}

/// Like [`load`]; with [`Secrets::Skip`] a missing PIN is not a problem, for commands that never
/// sign (`status`).
pub fn load_with(path: &Path, secrets: Secrets) -> Result<AgentConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        problems: vec![Problem::new(
            "",
            format!("cannot read the config file: {e}"),
        )],
    })?;
    parse(&text, secrets).map_err(|problems| ConfigError {
        file: path.to_owned(),
        problems,
    })
}

/// Like [`load`], with the file's text given; `file` only names it in the error.
pub fn load_str(text: &str, file: &Path) -> Result<AgentConfig, ConfigError> {
    parse(text, Secrets::Check).map_err(|problems| ConfigError {
        file: file.to_owned(),
        problems,
    })
}

/// Every problem in the config file at `path`; empty when it is fine (`config check`).
pub fn check(path: &Path) -> Vec<Problem> {
    match load(path) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

fn parse(text: &str, secrets: Secrets) -> Result<AgentConfig, Vec<Problem>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // The parser recovers and goes on; a second error on the same line is a consequence
        // of the first.
        let mut out: Vec<Problem> = Vec::new();
        for e in &errors {
            let location = e.span().map(|s| Location::of_offset(text, s.start));
            if out.iter().any(|p| {
                p.location.map(|l| l.line) == location.map(|l| l.line) && location.is_some()
            }) {
                continue;
            }
            out.push(Problem {
                path: String::new(),
                message: format!("TOML syntax: {}", e.message().trim_end()),
                location,
            });
        }
        // The parser reports an unterminated string after what it caused further down.
        out.sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
        return Err(out);
    }
    let root = root.into_inner();
    let mut index = Vec::new();
    index_table(&root, "", &mut index);

    let mut problems = Vec::new();
    for (key, value) in root.iter() {
        if !SECTIONS.contains(&key.get_ref().as_ref()) {
            let kind = if matches!(value.get_ref(), DeValue::Table(_)) {
                "table"
            } else {
                "key"
            };
            problems.push(Problem::new(
                key.get_ref().as_ref(),
                format!(
                    "unknown top-level {kind}; the tables are [{}]",
                    SECTIONS.join("], [")
                ),
            ));
        }
    }

    let mut de = SectionReader {
        root: &root,
        problems: &mut problems,
    };
    let sections = Sections {
        agent: de.section::<AgentSection>("agent"),
        http: de.section::<HttpSection>("http"),
        log: de.section::<LogSection>("log"),
        recovery: de.section::<RecoverySection>("recovery"),
        store: de.section::<StoreSection>("store"),
        signer: de.section::<SignerConfig>("signer"),
        parent: de.section::<ChainSection>("parent"),
        child: de.section::<ChainSection>("child"),
        chain_ids: ["parent", "child"].map(|side| chain_id_as_written(&root, side)),
    };
    let config = validate::build(sections, &mut problems, secrets);

    if problems.is_empty() {
        return Ok(config.expect("no problems means every section was built"));
    }
    for p in &mut problems {
        if p.location.is_none() {
            p.location = locate_path(&index, &p.path).map(|s| Location::of_offset(text, s.start));
        }
    }
    // File order; problems without a place (missing tables) last. Stable, so problems at the
    // same place keep the order they were found in.
    problems.sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
    Err(problems)
}

/// `[side] chain_id` straight from the document, so that the two ids are compared even when
/// a chain's table has other problems.
fn chain_id_as_written(root: &DeTable<'_>, side: &str) -> Option<u64> {
    let (_, table) = root.iter().find(|(k, _)| k.get_ref() == side)?;
    let DeValue::Table(t) = table.get_ref() else {
        return None;
    };
    let (_, id) = t.iter().find(|(k, _)| k.get_ref() == "chain_id")?;
    let DeValue::Integer(i) = id.get_ref() else {
        return None;
    };
    u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

/// The result of deserializing one top-level table.
pub(crate) enum Section<T> {
    /// The table is not in the file.
    Absent,
    /// It is, but could not be deserialized (problem recorded).
    Invalid,
    /// It is, and deserialized.
    Present(T),
}

struct SectionReader<'a, 'i> {
    root: &'a DeTable<'i>,
    problems: &'a mut Vec<Problem>,
}

impl SectionReader<'_, '_> {
    fn section<T: DeserializeOwned>(&mut self, name: &str) -> Section<T> {
        let Some((_, value)) = self.root.iter().find(|(k, _)| k.get_ref() == name) else {
            return Section::Absent;
        };
        // Secrets first: an inline PIN is reported as such, and the serde error it causes
        // (which could echo the PIN) is not.
        let mut pin_problems = Vec::new();
        if name == "signer" {
            inline_pin_problems(value, "signer", &mut pin_problems);
        } else if let DeValue::Table(t) = value.get_ref()
            && let Some((_, signer)) = t.iter().find(|(k, _)| k.get_ref() == "signer")
        {
            inline_pin_problems(signer, &format!("{name}.signer"), &mut pin_problems);
        }
        let result = T::deserialize(ValueDeserializer::from(value.clone()));
        match result {
            Ok(v) if pin_problems.is_empty() => Section::Present(v),
            Ok(_) => {
                self.problems.extend(pin_problems);
                Section::Invalid
            }
            Err(e) => {
                let problem = serde_problem(value, name, &e);
                // The signer table the bad PIN is in, e.g. `parent.signer`.
                let about_pin = pin_problems.iter().any(|p| {
                    p.path
                        .split_once(".pin")
                        .is_some_and(|(signer, _)| problem.path.starts_with(signer))
                });
                if !about_pin {
                    self.problems.push(problem);
                }
                self.problems.extend(pin_problems);
                Section::Invalid
            }
        }
    }
}

/// A `pin` that is not `{ env = "VAR" }` / `{ file = "PATH" }`: the value is never echoed.
fn inline_pin_problems(signer: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Problem>) {
    let DeValue::Table(t) = signer.get_ref() else {
        return;
    };
    let Some((_, pin)) = t.iter().find(|(k, _)| k.get_ref() == "pin") else {
        return;
    };
    const HOW: &str = "a PIN is never written in the config file: use pin = { env = \"VAR\" } \
                       (an environment variable holding it) or pin = { file = \"PATH\" } (a \
                       chmod-600 file holding it)";
    match pin.get_ref() {
        DeValue::Table(pt) => {
            for (k, _) in pt.iter() {
                if !matches!(k.get_ref().as_ref(), "env" | "file") {
                    out.push(Problem::new(
                        format!("{path}.pin.{}", k.get_ref()),
                        format!("unknown PIN source; {HOW}"),
                    ));
                }
            }
        }
        _ => out.push(Problem::new(format!("{path}.pin"), HOW)),
    }
}

/// A serde error inside top-level table `name`, as a problem at the deepest key its span
/// points into.
fn serde_problem(value: &Spanned<DeValue<'_>>, name: &str, e: &toml::de::Error) -> Problem {
    let mut path = name.to_owned();
    if let Some(span) = e.span() {
        descend(value, &span, &mut path);
    }
    let message = redact_echoed_string(e.message().trim_end(), &path);
    // Serde names the field in the message; the span points at the enclosing table.
    for (prefix, reason) in [
        ("missing field `", "is required but missing"),
        ("unknown field `", ""),
    ] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((field, _)) = rest.split_once('`')
        {
            if !path.ends_with(&format!(".{field}")) {
                path = format!("{path}.{field}");
            }
            let message = if reason.is_empty() {
                message.clone()
            } else {
                reason.to_owned()
            };
            return Problem::new(path, message);
        }
    }
    Problem::new(path, message)
}

/// Extends `path` with the keys/indices of the innermost key or value under `value` containing
/// `span`. Searches every branch: a table opened by a `[header]` does not span its keys.
fn descend(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut String) {
    if let Some(rest) = find(value, span) {
        path.push_str(&rest);
    }
}

/// One step down from a table or array: `.key` / `[i]`, the key's span, the value.
type Step<'a, 'i> = (String, Option<Range<usize>>, &'a Spanned<DeValue<'i>>);

fn find(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    let contains = |r: Range<usize>| r.start <= span.start && span.end <= r.end;
    let children: Vec<Step<'_, '_>> = match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, v)| (format!(".{}", k.get_ref()), Some(k.span()), v))
            .collect(),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), None, v))
            .collect(),
        _ => return None,
    };
    for (step, key_span, v) in children {
        if key_span.is_some_and(&contains) {
            return Some(step);
        }
        if let Some(rest) = find(v, span) {
            return Some(step + &rest);
        }
        if contains(v.span()) {
            return Some(step);
        }
    }
    None
}

/// Every key and array element in the document, with the span to point at.
fn index_table(t: &DeTable<'_>, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (k, v) in t.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        out.push((path.clone(), k.span()));
        index_value(v, &path, out);
    }
}

fn index_value(v: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<(String, Range<usize>)>) {
    match v.get_ref() {
        DeValue::Table(t) => index_table(t, path, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push((p.clone(), item.span()));
                index_value(item, &p, out);
            }
        }
        _ => {}
    }
}

/// The span of `path`, or of its nearest ancestor in the file.
fn locate_path(index: &[(String, Range<usize>)], path: &str) -> Option<Range<usize>> {
    let mut p = path;
    loop {
        if let Some((_, s)) = index.iter().find(|(k, _)| k == p) {
            return Some(s.clone());
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

/// Serde quotes the value it could not use (`invalid type: string "…", expected …`). A URL may
/// carry an API key and a PIN is a PIN, so such a value is not repeated (found by
/// `tests/secrets_redacted.rs`: `rpc = "https://…/KEY"` echoed the key).
fn redact_echoed_string(message: &str, path: &str) -> String {
    const OPEN: &str = "string \"";
    let Some(start) = message.find(OPEN) else {
        return message.to_owned();
    };
    let value_start = start + OPEN.len();
    let rest = &message[value_start..];
    let Some(end) = rest.find("\", expected").or_else(|| rest.rfind('"')) else {
        return message.to_owned();
    };
    let value = &rest[..end];
    let secret_place = [".rpc", ".ws", ".endpoint", ".pin", "store.url"]
        .iter()
        .any(|k| path.contains(k))
        || path.starts_with("pin");
    if !(secret_place || value.contains("://") || value.contains('@')) {
        return message.to_owned();
    }
    format!(
        "{}a string (not shown: it may carry a secret){}",
        &message[..start],
        &rest[end + 1..]
    )
}
