//! Prometheus metrics for the platform engineer: logins by outcome, refusals by kind, visits
//! begun and open, and how long a revoked person's connections stayed open.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

/// Every metric the gateway exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    logins: Family<Outcome, Counter>,
    refusals: Family<Kind, Counter>,
    visits: Family<Kind, Counter>,
    open_visits: Family<Kind, Gauge>,
    ended_by_revocation: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("haven_gateway");
        let metrics = Self {
            logins: Family::default(),
            refusals: Family::default(),
            visits: Family::default(),
            open_visits: Family::default(),
            ended_by_revocation: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("logins", "Logins by outcome (accepted, refused)", metrics.logins.clone());
        registry.register(
            "refusals",
            "Refused requests by kind (NotAUser, SecondFactorRequired, ...)",
            metrics.refusals.clone(),
        );
        registry.register("visits", "Visits begun by kind (http, websocket)", metrics.visits.clone());
        registry.register("open_visits", "Visits in progress by kind", metrics.open_visits.clone());
        registry.register(
            "visits_ended_by_access_removal",
            "Visits the sweeper ended because access was removed",
            metrics.ended_by_revocation.clone(),
        );
        Self { registry, ..metrics }
    }
}

impl Metrics {
    pub fn login(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.logins.get_or_create(&Outcome { outcome: outcome.into() }).inc();
    }

    pub fn refused(&self, kind: &str) {
        self.refusals.get_or_create(&Kind { kind: kind.into() }).inc();
    }

    pub fn visit_began(&self, kind: &str) {
        self.visits.get_or_create(&Kind { kind: kind.into() }).inc();
        self.open_visits.get_or_create(&Kind { kind: kind.into() }).inc();
    }

    pub fn visit_ended(&self, kind: &str, access_removed: bool) {
        self.open_visits.get_or_create(&Kind { kind: kind.into() }).dec();
        if access_removed {
            self.ended_by_revocation.inc();
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reach_the_exposition() {
        let metrics = Metrics::default();
        metrics.login(true);
        metrics.refused("NotAUser");
        metrics.visit_began("websocket");
        metrics.visit_ended("websocket", true);
        let text = metrics.encode();
        assert!(text.contains("haven_gateway_logins_total{outcome=\"accepted\"} 1"), "{text}");
        assert!(text.contains("haven_gateway_refusals_total{kind=\"NotAUser\"} 1"), "{text}");
        assert!(text.contains("haven_gateway_open_visits{kind=\"websocket\"} 0"), "{text}");
        assert!(text.contains("haven_gateway_visits_ended_by_access_removal_total 1"), "{text}");
    }
}
