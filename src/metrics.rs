//! Request metrics in Prometheus' text format.
//!
//! Hand-written rather than the `metrics` crates: we need a few counters
//! and one histogram, kept in our own state (no global recorder), and the
//! exporter crate would bring an HTTP stack of its own.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use dashmap::DashMap;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters keyed by route *template* (`/api/stories/{id}`), never by the
/// raw path, so the maps are bounded by the number of routes.
///
/// Every route is known when the application is built ([`Metrics::prepare`]),
/// so its histogram and table room are made then, and the keys are the
/// routes' own static strings: counting a request allocates nothing. (A key
/// allocated at its first request could land anywhere in the heap, and one
/// long-lived block made during a crowd of connections keeps the allocator
/// from giving back the memory freed around it.)
pub struct Metrics {
    /// `(method, route, status)` → requests answered.
    requests: DashMap<(&'static str, &'static str, u16), AtomicU64>,
    /// route → latency histogram.
    latency: DashMap<&'static str, Histogram>,
    /// Streamed answers (a drawing's strokes) dropped because the client
    /// stopped reading, or the strokes could not be read.
    pub streams_cut: AtomicU64,
}

/// Where requests that matched no route are counted.
const UNMATCHED: &str = "unmatched";

/// Room made up front in the counters' table: about 60 routes, with the
/// few status codes each answers most (12 KiB).
const COUNTERS_UP_FRONT: usize = 256;

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: DashMap::with_capacity(COUNTERS_UP_FRONT),
            latency: DashMap::default(),
            streams_cut: AtomicU64::new(0),
        }
    }
}

/// A request's method as a static string (others are counted together).
fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Makes a histogram for every route.
    pub fn prepare(&self, routes: impl IntoIterator<Item = &'static str>) {
        for route in routes.into_iter().chain([UNMATCHED]) {
            self.latency.entry(route).or_default();
        }
    }

    /// Counts one answered request. A route that was not prepared is
    /// counted as `unmatched` (there is none: every route is prepared).
    pub fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let Some(histogram) = self
            .latency
            .get(route)
            .or_else(|| self.latency.get(UNMATCHED))
        else {
            return;
        };
        let route: &'static str = histogram.key();
        self.requests
            .entry((method, route, status))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Appends the request metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP http_requests_total Requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for entry in self.requests.iter() {
            let (method, route, status) = entry.key();
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                entry.value().load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for entry in self.latency.iter() {
            let histogram = entry.value();
            if histogram.count.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let route = escape(entry.key());
            for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
    }
}

/// Appends one gauge with its help line.
pub fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Appends one counter with its help line.
pub fn counter(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Middleware: counts every request under its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_name(request.method());
    // The matched path is shared (an `Arc<str>`): cloning it copies nothing.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.record(
        method,
        route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
