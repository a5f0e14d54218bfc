//! Prometheus metrics of the reward server (`GET /metrics`).
//!
//! Trainers call the server thousands of times an hour; operators need request, sample, error and
//! latency figures without attaching a profiler. prometheus-client renders the text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub route: &'static str,
    pub kind: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabel, Counter>,
    pub samples: Family<RouteLabel, Counter>,
    pub errors: Family<ErrorLabel, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("medu1");
        let requests = Family::<RouteLabel, Counter>::default();
        let samples = Family::<RouteLabel, Counter>::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        // 50 µs .. ~3.3 s: batch scoring sits in the sub-millisecond to tens-of-milliseconds range.
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00005, 2.0, 17,
            ))
        });
        registry.register("requests", "HTTP requests received", requests.clone());
        registry.register("samples", "samples scored", samples.clone());
        registry.register(
            "errors",
            "requests or samples that ended in an error",
            errors.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "time from request received to response ready",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            samples,
            errors,
            latency,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
