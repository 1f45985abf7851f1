//! Metric handles: each one sample of a family registered in the agent's `prometheus-client`
//! registry, held by the component that counts where the event happens (cheap to clone,
//! relaxed atomics, no lock). A handle made with `Default` is detached: it counts, and nothing
//! exports it (a component run without the agent, as in its own tests).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::{Metric, Registry};

/// A sample's label pairs (names and values fixed at registration).
pub(crate) type Labels = Vec<(&'static str, &'static str)>;

/// A monotonically increasing count.
#[derive(Debug, Clone, Default)]
pub struct Counter(PromCounter);

impl Counter {
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// An integer that goes up and down (a nonce, a queue length, a 0/1 flag).
#[derive(Debug, Clone, Default)]
pub struct Gauge(PromGauge);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    pub fn get(&self) -> u64 {
        u64::try_from(self.0.get()).unwrap_or(0)
    }
}

/// A float gauge (an operator balance in wei).
#[derive(Debug, Clone, Default)]
pub struct FloatGauge(PromGauge<f64, AtomicU64>);

impl FloatGauge {
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// A registered counter family; [`CounterFamily::handle`] gives one sample's handle.
pub(crate) struct CounterFamily(Family<Labels, PromCounter>);
/// A registered gauge family.
pub(crate) struct GaugeFamily(Family<Labels, PromGauge>);
/// A registered float gauge family.
pub(crate) struct FloatGaugeFamily(Family<Labels, PromGauge<f64, AtomicU64>>);

impl CounterFamily {
    pub fn handle(&self, labels: Labels) -> Counter {
        Counter(self.0.get_or_create_owned(&labels))
    }
}

impl GaugeFamily {
    pub fn handle(&self, labels: Labels) -> Gauge {
        Gauge(self.0.get_or_create_owned(&labels))
    }
}

impl FloatGaugeFamily {
    pub fn handle(&self, labels: Labels) -> FloatGauge {
        FloatGauge(self.0.get_or_create_owned(&labels))
    }
}

/// Registers families in a registry. Names and help are written as they appear on `/metrics`:
/// a counter's `_total` is dropped here (the encoder writes it), and a help text's final full
/// stop too (the registry adds one).
pub(crate) struct Registrar<'r>(pub &'r mut Registry);

impl Registrar<'_> {
    fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.0
            .register(name, help.strip_suffix('.').unwrap_or(help), metric);
    }

    pub fn counter(&mut self, name: &str, help: &str) -> CounterFamily {
        debug_assert!(name.ends_with("_total"), "counter {name} without _total");
        let family = Family::default();
        self.register(
            name.strip_suffix("_total").unwrap_or(name),
            help,
            family.clone(),
        );
        CounterFamily(family)
    }

    pub fn gauge(&mut self, name: &str, help: &str) -> GaugeFamily {
        let family = Family::default();
        self.register(name, help, family.clone());
        GaugeFamily(family)
    }

    pub fn float_gauge(&mut self, name: &str, help: &str) -> FloatGaugeFamily {
        let family = Family::default();
        self.register(name, help, family.clone());
        FloatGaugeFamily(family)
    }
}
