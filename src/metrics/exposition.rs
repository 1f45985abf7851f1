//! Families read at scrape time (from sources other components keep), encoded through
//! `prometheus-client`'s Prometheus text encoder (version 0.0.4) like the registry's own: the
//! [`Encoder`] collects them, and [`Encoder::finish`] hands them to the crate as a collector,
//! which writes `# HELP`, `# TYPE` and the samples, label values and help escaped.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the exposition (the crate's Prometheus text format, 0.0.4).
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A family's type, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl From<Kind> for MetricType {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
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

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Owned {
    Plain(Labels, Value),
    /// Buckets as the crate takes them: (upper bound, count in that bucket alone).
    Histogram {
        labels: Labels,
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug)]
struct Family {
    /// Without a counter's `_total` (the encoder appends it).
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Owned>,
}

/// Collects families, then encodes them ([`Encoder::finish`]).
#[derive(Debug, Default)]
pub struct Encoder {
    families: Vec<Family>,
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter or gauge family with its samples (a counter's name ends in `_total`, as it is
    /// scraped). A family with no samples is still described, so dashboards can tell "not yet"
    /// from "not exported".
    pub fn family(&mut self, name: &str, help: &str, kind: Kind, samples: &[Sample<'_>]) {
        let name = match kind {
            Kind::Counter => {
                debug_assert!(name.ends_with("_total"), "counter {name} without _total");
                name.strip_suffix("_total").unwrap_or(name)
            }
            Kind::Gauge | Kind::Histogram => name,
        };
        self.families.push(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            samples: samples
                .iter()
                .map(|(labels, v)| Owned::Plain(owned(labels), *v))
                .collect(),
        });
    }

    /// A histogram family: `_bucket` (with `le`, `+Inf` last), `_sum` and `_count` per label set.
    pub fn histogram(&mut self, name: &str, help: &str, samples: &[HistogramSample<'_>]) {
        self.families.push(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind: Kind::Histogram,
            samples: samples
                .iter()
                .map(|s| {
                    let mut below = 0;
                    let buckets = s
                        .bounds
                        .iter()
                        .zip(s.buckets)
                        .map(|(bound, cumulative)| {
                            let alone = cumulative.saturating_sub(below);
                            below = *cumulative;
                            (*bound, alone)
                        })
                        .collect();
                    Owned::Histogram {
                        labels: owned(&s.labels),
                        buckets,
                        count: s.count,
                        sum: s.sum,
                    }
                })
                .collect(),
        });
    }

    /// The document.
    pub fn finish(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Collected(self.families)));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// The collected families, as the crate's registry encodes them.
#[derive(Debug)]
struct Collected(Vec<Family>);

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut family = encoder.encode_descriptor(&f.name, &f.help, None, f.kind.into())?;
            for sample in &f.samples {
                match sample {
                    Owned::Plain(labels, value) => {
                        let mut m = family.encode_family(labels)?;
                        match (f.kind, value) {
                            (Kind::Counter, Value::Int(v)) => {
                                m.encode_counter::<NoLabelSet, _, u64>(v, None)?
                            }
                            (Kind::Counter, Value::Float(v)) => {
                                m.encode_counter::<NoLabelSet, _, f64>(v, None)?
                            }
                            (_, Value::Int(v)) => m.encode_gauge(v)?,
                            (_, Value::Float(v)) => m.encode_gauge(v)?,
                        }
                    }
                    Owned::Histogram {
                        labels,
                        buckets,
                        count,
                        sum,
                    } => {
                        family
                            .encode_family(labels)?
                            .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_histogram_layout() {
        let mut e = Encoder::new();
        e.family(
            "bridge_x_total",
            "An x.\nSecond line.",
            Kind::Counter,
            &[(vec![("chain", "pa\"rent")], Value::Int(3))],
        );
        e.family("bridge_empty", "None yet.", Kind::Gauge, &[]);
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
             # HELP bridge_empty None yet.\n\
             # TYPE bridge_empty gauge\n\
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
