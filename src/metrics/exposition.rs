//! The Prometheus text exposition format (version 0.0.4), written by hand: one `# HELP` and one
//! `# TYPE` line per family, then its samples, label values escaped.
//!
//! Every family is written whole before the next begins, which the format requires; the
//! [`Encoder`] enforces it by taking a family's samples in one call.

use std::fmt::Write as _;

/// The `Content-Type` of [`Encoder::finish`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value: integers stay exact, floats use the format's spelling of NaN and infinities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

/// One sample of a counter or gauge family: its label pairs and value.
pub type Sample<'a> = (Vec<(&'static str, &'a str)>, Value);

/// A histogram sample: cumulative bucket counts per upper bound, count (the `+Inf` bucket), sum.
pub struct HistogramSample<'a> {
    pub labels: Vec<(&'static str, &'a str)>,
    pub bounds: &'a [f64],
    /// Cumulative counts, one per bound.
    pub buckets: &'a [u64],
    pub count: u64,
    pub sum: f64,
}

/// Builds one exposition document.
#[derive(Debug, Default)]
pub struct Encoder {
    out: String,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter or gauge family with its samples. A family with no samples is still described,
    /// so dashboards can tell "not yet" from "not exported".
    pub fn family(&mut self, name: &str, help: &str, kind: Kind, samples: &[Sample<'_>]) {
        self.header(name, help, kind);
        for (labels, value) in samples {
            self.sample(name, labels, None, *value);
        }
    }

    /// A histogram family: `_bucket` (with `le`), `_sum` and `_count` per label set.
    pub fn histogram(&mut self, name: &str, help: &str, samples: &[HistogramSample<'_>]) {
        self.header(name, help, Kind::Histogram);
        let bucket = format!("{name}_bucket");
        for s in samples {
            for (bound, count) in s.bounds.iter().zip(s.buckets) {
                let le = format_float(*bound);
                self.sample(&bucket, &s.labels, Some(&le), Value::Int(*count));
            }
            self.sample(&bucket, &s.labels, Some("+Inf"), Value::Int(s.count));
            self.sample(&format!("{name}_sum"), &s.labels, None, Value::Float(s.sum));
            self.sample(
                &format!("{name}_count"),
                &s.labels,
                None,
                Value::Int(s.count),
            );
        }
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(valid_name(name), "bad metric name {name:?}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: Value) {
        self.out.push_str(name);
        if !labels.is_empty() || le.is_some() {
            self.out.push('{');
            let mut first = true;
            for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
                debug_assert!(valid_name(k), "bad label name {k:?}");
                if !first {
                    self.out.push(',');
                }
                first = false;
                let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) => self.out.push_str(&format_float(v)),
        }
        self.out.push('\n');
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Label values escape `\`, `"` and newline.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP texts escape `\` and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go-style float spelling the format expects for the special values.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_specials() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert!(valid_name("bridge_x:y_1"));
        assert!(!valid_name("1x") && !valid_name("a-b") && !valid_name(""));
    }

    #[test]
    fn family_and_histogram_layout() {
        let mut e = Encoder::new();
        e.family(
            "bridge_x_total",
            "An x.\nSecond line.",
            Kind::Counter,
            &[(vec![("chain", "pa\"rent")], Value::Int(3))],
        );
        e.histogram(
            "bridge_h_seconds",
            "H.",
            &[HistogramSample {
                labels: vec![("chain", "child")],
                bounds: &[0.5, 1.0],
                buckets: &[1, 2],
                count: 3,
                sum: 4.5,
            }],
        );
        assert_eq!(
            e.finish(),
            "# HELP bridge_x_total An x.\\nSecond line.\n\
             # TYPE bridge_x_total counter\n\
             bridge_x_total{chain=\"pa\\\"rent\"} 3\n\
             # HELP bridge_h_seconds H.\n\
             # TYPE bridge_h_seconds histogram\n\
             bridge_h_seconds_bucket{chain=\"child\",le=\"0.5\"} 1\n\
             bridge_h_seconds_bucket{chain=\"child\",le=\"1\"} 2\n\
             bridge_h_seconds_bucket{chain=\"child\",le=\"+Inf\"} 3\n\
             bridge_h_seconds_sum{chain=\"child\"} 4.5\n\
             bridge_h_seconds_count{chain=\"child\"} 3\n"
        );
    }
}
