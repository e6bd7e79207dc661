//! Prometheus metrics: counters and histograms the writer and the HTTP layer update, rendered
//! in the text exposition format at `/metrics`.
//!
//! Lock-free atomics only: the writer updates them on every commit and must never wait on a
//! scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use model::AlarmKind;

/// A histogram with fixed upper bounds (seconds or items), as Prometheus expects: cumulative
/// buckets, a sum and a count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, plus `+Inf`; not cumulative here, summed when rendered.
    buckets: Vec<AtomicU64>,
    /// The sum in millionths, so that it can be an atomic integer.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micro
            .fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// Latencies from a tenth of a millisecond to ten seconds.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Inputs per commit, from one to the largest group.
const ITEMS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Everything `/metrics` reports.
#[derive(Debug)]
pub struct Metrics {
    pub inputs_accepted: AtomicU64,
    pub inputs_rejected: AtomicU64,
    pub inputs_duplicate: AtomicU64,
    /// Commits that failed (nothing of them stored; their sources were told so).
    pub commit_failures: AtomicU64,
    /// Observations deleted by retention.
    pub observations_purged: AtomicU64,
    /// Closed transits whose personal data retention erased.
    pub transits_personal_erased: AtomicU64,
    /// Alarm attachments deleted by retention.
    pub attachments_purged: AtomicU64,
    /// Seconds per group commit (the pipeline step and the transaction).
    pub commit_seconds: Histogram,
    /// Inputs per group commit.
    pub batch_items: Histogram,
    /// Alarms raised, by kind, in the order of `AlarmKind::ALL`.
    pub alarms_by_kind: Vec<AtomicU64>,
    /// From the receipt of the submission that raised an alarm to the alarm's publication.
    pub alarm_latency_seconds: Histogram,
    /// HTTP responses by status class (1xx..5xx).
    pub http_responses: [AtomicU64; 5],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            inputs_accepted: AtomicU64::new(0),
            inputs_rejected: AtomicU64::new(0),
            inputs_duplicate: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            observations_purged: AtomicU64::new(0),
            transits_personal_erased: AtomicU64::new(0),
            attachments_purged: AtomicU64::new(0),
            commit_seconds: Histogram::new(SECONDS),
            batch_items: Histogram::new(ITEMS),
            alarms_by_kind: AlarmKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            alarm_latency_seconds: Histogram::new(SECONDS),
            http_responses: Default::default(),
        }
    }
}

impl Metrics {
    pub fn alarm_raised(&self, kind: AlarmKind) {
        if let Some(i) = AlarmKind::ALL.iter().position(|k| *k == kind) {
            self.alarms_by_kind[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.http_responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format. `queue_depth` and `stream_clients` are gauges read at
    /// scrape time.
    pub fn render(&self, queue_depth: usize, stream_clients: usize) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP sealwatch_inputs_total Inputs taken by the ingest pipeline, by verdict.\n\
             # TYPE sealwatch_inputs_total counter\n\
             sealwatch_inputs_total{{verdict=\"accepted\"}} {}\n\
             sealwatch_inputs_total{{verdict=\"duplicate\"}} {}\n\
             sealwatch_inputs_total{{verdict=\"rejected\"}} {}",
            load(&self.inputs_accepted),
            load(&self.inputs_duplicate),
            load(&self.inputs_rejected),
        );
        let _ = writeln!(
            out,
            "# HELP sealwatch_commits_total Group commits.\n\
             # TYPE sealwatch_commits_total counter\n\
             sealwatch_commits_total {}\n\
             # HELP sealwatch_commit_failures_total Group commits that failed; nothing of them was stored.\n\
             # TYPE sealwatch_commit_failures_total counter\n\
             sealwatch_commit_failures_total {}\n\
             # HELP sealwatch_observations_purged_total Observations deleted by retention.\n\
             # TYPE sealwatch_observations_purged_total counter\n\
             sealwatch_observations_purged_total {}\n\
             # HELP sealwatch_transits_personal_erased_total Closed transits whose personal data retention erased.\n\
             # TYPE sealwatch_transits_personal_erased_total counter\n\
             sealwatch_transits_personal_erased_total {}\n\
             # HELP sealwatch_attachments_purged_total Alarm attachments deleted by retention.\n\
             # TYPE sealwatch_attachments_purged_total counter\n\
             sealwatch_attachments_purged_total {}",
            self.commit_seconds.count(),
            load(&self.commit_failures),
            load(&self.observations_purged),
            load(&self.transits_personal_erased),
            load(&self.attachments_purged),
        );
        self.commit_seconds.render(
            &mut out,
            "sealwatch_commit_seconds",
            "Time to supervise and commit one group of submissions.",
        );
        self.batch_items.render(
            &mut out,
            "sealwatch_commit_batch_items",
            "Inputs per group commit.",
        );
        let _ = writeln!(
            out,
            "# HELP sealwatch_alarms_total Alarms raised, by kind.\n\
             # TYPE sealwatch_alarms_total counter"
        );
        for (kind, n) in AlarmKind::ALL.iter().zip(&self.alarms_by_kind) {
            let _ = writeln!(
                out,
                "sealwatch_alarms_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                load(n)
            );
        }
        self.alarm_latency_seconds.render(
            &mut out,
            "sealwatch_alarm_latency_seconds",
            "From receipt of the submission that raised an alarm to the alarm's publication.",
        );
        let _ = writeln!(
            out,
            "# HELP sealwatch_writer_queue_depth Jobs waiting for the writer.\n\
             # TYPE sealwatch_writer_queue_depth gauge\n\
             sealwatch_writer_queue_depth {queue_depth}\n\
             # HELP sealwatch_stream_clients Live-stream subscribers.\n\
             # TYPE sealwatch_stream_clients gauge\n\
             sealwatch_stream_clients {stream_clients}\n\
             # HELP sealwatch_http_responses_total HTTP responses by status class.\n\
             # TYPE sealwatch_http_responses_total counter"
        );
        for (i, n) in self.http_responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "sealwatch_http_responses_total{{code=\"{}xx\"}} {}",
                i + 1,
                load(n)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 20.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 24.5\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
    }
}
