//! Prometheus metrics: reconciles and their failures by controller and error category, how
//! long reconciles take, objects by phase, and the durations that matter to people —
//! preparing a dataset, an airlock request from submission to its end, and the lag from a
//! workspace's expiry to its access being removed.

use std::{sync::Mutex, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    controller: String,
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    kind: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AirlockLabels {
    direction: String,
    phase: String,
}

/// Every metric the operator exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    reconcile_seconds: Family<ControllerLabel, Histogram>,
    objects: Family<PhaseLabels, Gauge>,
    preparation_seconds: Histogram,
    airlock_seconds: Family<AirlockLabels, Histogram>,
    teardown_lag_seconds: Histogram,
    /// Serialises the recount of `objects` and the encoding that follows it.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("haven");
        let reconciles = Family::<ControllerLabel, Counter>::default();
        registry.register("reconciles", "Reconciles run, by controller", reconciles.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by controller and error category",
            failures.clone(),
        );
        // 1 ms to about 65 s.
        let reconcile_seconds = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 17))
        });
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconcile takes",
            reconcile_seconds.clone(),
        );
        let objects = Family::<PhaseLabels, Gauge>::default();
        registry.register("objects", "Haven objects by kind and phase", objects.clone());
        // 100 ms to about 7 hours.
        let preparation_seconds = Histogram::new(exponential_buckets(0.1, 2.0, 18));
        registry.register(
            "preparation_duration_seconds",
            "Preparing one dataset extract",
            preparation_seconds.clone(),
        );
        // 1 s to about 36 days: people review these.
        let airlock_seconds = Family::<AirlockLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 2.0, 22))
        });
        registry.register(
            "airlock_duration_seconds",
            "An airlock request from submission to its final phase, by direction and phase",
            airlock_seconds.clone(),
        );
        // 10 ms to about 80 s.
        let teardown_lag_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "teardown_lag_seconds",
            "From a workspace's expiry (or its permit's end) to its access being removed",
            teardown_lag_seconds.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            reconcile_seconds,
            objects,
            preparation_seconds,
            airlock_seconds,
            teardown_lag_seconds,
            scrape: Mutex::new(()),
        }
    }

    /// Records one reconcile of `controller`: its duration and, if it failed, the category.
    pub fn reconciled(&self, controller: &str, took: Duration, failure: Option<&str>) {
        let label = ControllerLabel { controller: controller.to_owned() };
        self.reconciles.get_or_create(&label).inc();
        self.reconcile_seconds.get_or_create(&label).observe(took.as_secs_f64());
        if let Some(category) = failure {
            let labels = FailureLabels { controller: controller.to_owned(), category: category.to_owned() };
            self.failures.get_or_create(&labels).inc();
        }
    }

    pub fn prepared(&self, took: Duration) {
        self.preparation_seconds.observe(took.as_secs_f64());
    }

    pub fn airlock_finished(&self, direction: &str, phase: &str, took: Duration) {
        let labels = AirlockLabels { direction: direction.to_owned(), phase: phase.to_owned() };
        self.airlock_seconds.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn access_removed(&self, lag: Duration) {
        self.teardown_lag_seconds.observe(lag.as_secs_f64());
    }

    /// The text exposition, with `objects` recounted from `(kind, phase)` pairs first.
    pub fn render(&self, objects: impl IntoIterator<Item = (&'static str, String)>) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.objects.clear();
        for (kind, phase) in objects {
            self.objects.get_or_create(&PhaseLabels { kind: kind.to_owned(), phase }).inc();
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_and_objects_by_phase_are_exported() {
        let metrics = Metrics::new();
        metrics.reconciled("workspace", Duration::from_millis(3), None);
        metrics.reconciled("workspace", Duration::from_millis(5), Some("kube"));
        metrics.airlock_finished("Export", "Exported", Duration::from_secs(90));
        let text = metrics.render([
            ("Workspace", "Ready".into()),
            ("Workspace", "Ready".into()),
            ("DataPermit", "Active".into()),
        ]);
        assert!(text.contains("haven_reconciles_total{controller=\"workspace\"} 2"), "{text}");
        assert!(
            text.contains("haven_reconcile_failures_total{controller=\"workspace\",category=\"kube\"} 1"),
            "{text}"
        );
        assert!(text.contains("haven_objects{kind=\"Workspace\",phase=\"Ready\"} 2"), "{text}");
        assert!(text.contains("haven_objects{kind=\"DataPermit\",phase=\"Active\"} 1"), "{text}");
        assert!(
            text.contains("haven_airlock_duration_seconds_count{direction=\"Export\",phase=\"Exported\"} 1"),
            "{text}"
        );
        // A phase no object is in any more is not reported as a stale count.
        let later = metrics.render([("DataPermit", "Active".into())]);
        assert!(!later.contains("phase=\"Ready\""), "{later}");
    }
}
