//! Prometheus metrics of a capture: [`CaptureMetrics`] follows the
//! capture's events, [`http::serve`] answers `GET /metrics` with them in
//! the OpenMetrics text format, and [`disk::watch_size`] keeps the store's
//! size current. Nothing here touches the store or the source: every value
//! comes from the capture's own reports or from the store's directory.

pub mod disk;
pub mod http;

use cdc_source::{CaptureEvent, SessionStage, StreamProgress};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use changelog::CommitTime;

use crate::commands::seconds_since;

/// One label: `[(name, value)]`.
type Label = [(&'static str, &'static str); 1];

/// What a capture is doing, as the `state` label of `asof_capture_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Starting,
    Copying,
    Streaming,
    Reconnecting,
}

impl State {
    const ALL: [State; 4] = [State::Starting, State::Copying, State::Streaming, State::Reconnecting];

    fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Copying => "copying",
            State::Streaming => "streaming",
            State::Reconnecting => "reconnecting",
        }
    }
}

/// The metrics of one capture. Shared between the capture's event handler,
/// the HTTP responder and the size watcher; every value is an atomic.
#[derive(Debug)]
pub struct CaptureMetrics {
    registry: Registry,
    transactions: Counter,
    changes: Counter,
    copied_rows: Counter,
    reconnects: Counter,
    errors: Family<Label, Counter>,
    state: Family<Label, Gauge>,
    slot_active: Gauge,
    last_commit: Gauge<f64, AtomicU64>,
    lag_bytes: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    acknowledged: Gauge,
    wal_end: Gauge,
    store_size: Gauge,
    /// When the capture was last seen caught up (Unix microseconds, 0:
    /// never): a capture that falls behind now is behind by at most the
    /// time since, however old its last stored commit.
    caught_up_at: AtomicI64,
}

impl CaptureMetrics {
    pub fn new() -> Self {
        let mut m = CaptureMetrics {
            registry: Registry::with_prefix("asof"),
            transactions: Counter::default(),
            changes: Counter::default(),
            copied_rows: Counter::default(),
            reconnects: Counter::default(),
            errors: Family::default(),
            state: Family::default(),
            slot_active: Gauge::default(),
            last_commit: Gauge::default(),
            lag_bytes: Gauge::default(),
            lag_seconds: Gauge::default(),
            acknowledged: Gauge::default(),
            wal_end: Gauge::default(),
            store_size: Gauge::default(),
            caught_up_at: AtomicI64::new(0),
        };
        m.register();
        // Every label value is shown from the start, so a query sees a 0
        // rather than no series.
        for stage in [SessionStage::Setup, SessionStage::Stream] {
            let _ = m.errors.get_or_create(&[("kind", stage.as_str())]);
        }
        m.set_state(State::Starting);
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "transactions_stored",
            "Transactions stored by this capture",
            self.transactions.clone(),
        );
        r.register(
            "changes_stored",
            "Row changes stored by this capture",
            self.changes.clone(),
        );
        r.register(
            "initial_copy_rows",
            "Rows copied by the initial copy",
            self.copied_rows.clone(),
        );
        r.register(
            "reconnects",
            "Times the capture connected again after losing the source",
            self.reconnects.clone(),
        );
        r.register(
            "errors",
            "Transient errors that ended a session, by where the session was (setup, stream)",
            self.errors.clone(),
        );
        r.register(
            "capture_state",
            "1 for what the capture is doing (starting, copying, streaming, reconnecting)",
            self.state.clone(),
        );
        r.register(
            "slot_active",
            "1 while the capture streams from its replication slot",
            self.slot_active.clone(),
        );
        r.register_with_unit(
            "last_commit_timestamp",
            "Commit time of the last stored transaction (Unix time)",
            Unit::Seconds,
            self.last_commit.clone(),
        );
        r.register_with_unit(
            "lag",
            "WAL between the server's end and the acknowledged position",
            Unit::Bytes,
            self.lag_bytes.clone(),
        );
        r.register_with_unit(
            "lag",
            "Age of the last stored commit while WAL is pending (0 when caught up)",
            Unit::Seconds,
            self.lag_seconds.clone(),
        );
        r.register(
            "acknowledged_lsn",
            "Position acknowledged to the source (durable in the store)",
            self.acknowledged.clone(),
        );
        r.register(
            "source_wal_end_lsn",
            "The source's WAL end as last reported",
            self.wal_end.clone(),
        );
        r.register_with_unit(
            "store_size",
            "Bytes of the store's files on disk",
            Unit::Bytes,
            self.store_size.clone(),
        );
    }

    /// Takes in one capture event.
    pub fn observe(&self, ev: &CaptureEvent) {
        match ev {
            CaptureEvent::Notice(_) => {}
            CaptureEvent::Copy(p) => {
                self.set_state(State::Copying);
                raise(&self.copied_rows, p.rows);
            }
            CaptureEvent::Stream(p) => self.stream(p),
            CaptureEvent::Reconnecting { stage, .. } => {
                self.set_state(State::Reconnecting);
                self.reconnects.inc();
                self.errors.get_or_create(&[("kind", stage.as_str())]).inc();
            }
        }
    }

    fn stream(&self, p: &StreamProgress) {
        self.set_state(State::Streaming);
        raise(&self.transactions, p.txns);
        raise(&self.changes, p.records);
        if let Some(w) = p.watermark {
            self.last_commit.set(w.commit_time.unix_micros() as f64 / 1e6);
        }
        self.lag_bytes.set(gauge_value(p.lag_bytes()));
        let now = CommitTime::now().unix_micros();
        if p.lag_bytes() == 0 {
            self.caught_up_at.store(now, Ordering::Relaxed);
        }
        let behind_for = match self.caught_up_at.load(Ordering::Relaxed) {
            0 => f64::INFINITY,
            t => (now - t).max(0) as f64 / 1e6,
        };
        self.lag_seconds.set(lag_seconds(p).min(behind_for));
        self.acknowledged.set(gauge_value(p.confirmed.0));
        self.wal_end.set(gauge_value(p.server_wal_end.0));
    }

    /// Records the store's size on disk.
    pub fn set_store_size(&self, bytes: u64) {
        self.store_size.set(gauge_value(bytes));
    }

    fn set_state(&self, now: State) {
        for s in State::ALL {
            self.state
                .get_or_create(&[("state", s.as_str())])
                .set(i64::from(s == now));
        }
        self.slot_active.set(i64::from(now == State::Streaming));
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Seconds since the last stored commit while WAL is pending; 0 once
/// everything the server has is acknowledged.
pub fn lag_seconds(p: &StreamProgress) -> f64 {
    p.watermark
        .filter(|_| p.lag_bytes() > 0)
        .map(|w| seconds_since(w.commit_time))
        .unwrap_or(0.0)
}

/// Moves a counter up to a running total reported by the capture.
fn raise(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use changelog::Lsn;

    fn sample(text: &str, name: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
    }

    #[test]
    fn stream_progress_becomes_named_samples_and_survives_a_reconnect() {
        let m = CaptureMetrics::new();
        let progress = StreamProgress {
            records: 7,
            txns: 2,
            confirmed: Lsn(100),
            server_wal_end: Lsn(150),
            ..StreamProgress::default()
        };
        m.observe(&CaptureEvent::Stream(progress));
        m.observe(&CaptureEvent::Reconnecting {
            stage: SessionStage::Stream,
            delay: std::time::Duration::from_millis(500),
        });
        let text = m.encode();
        for (name, want) in [
            ("asof_changes_stored_total", "7"),
            ("asof_transactions_stored_total", "2"),
            ("asof_lag_bytes", "50"),
            ("asof_acknowledged_lsn", "100"),
            ("asof_source_wal_end_lsn", "150"),
            ("asof_reconnects_total", "1"),
            ("asof_errors_total{kind=\"stream\"}", "1"),
            ("asof_errors_total{kind=\"setup\"}", "0"),
            ("asof_capture_state{state=\"reconnecting\"}", "1"),
            ("asof_capture_state{state=\"streaming\"}", "0"),
            ("asof_slot_active", "0"),
            ("asof_store_size_bytes", "0"),
        ] {
            assert_eq!(sample(&text, name).as_deref(), Some(want), "{name} in\n{text}");
        }
        // The next session reports the same running totals.
        m.observe(&CaptureEvent::Stream(StreamProgress {
            records: 9,
            confirmed: Lsn(200),
            server_wal_end: Lsn(200),
            ..progress
        }));
        let text = m.encode();
        assert_eq!(sample(&text, "asof_changes_stored_total").as_deref(), Some("9"));
        assert_eq!(sample(&text, "asof_lag_bytes").as_deref(), Some("0"));
        assert_eq!(sample(&text, "asof_lag_seconds").as_deref(), Some("0.0"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn lag_in_seconds_counts_from_the_last_time_it_was_caught_up() {
        let hour_ago = CommitTime::from_unix_micros(CommitTime::now().unix_micros() - 3_600_000_000);
        let watermark = changelog::Watermark {
            commit_lsn: Lsn(90),
            end_lsn: Lsn(100),
            commit_time: hour_ago,
            xid: changelog::Xid(7),
        };
        let behind = StreamProgress {
            watermark: Some(watermark),
            confirmed: Lsn(100),
            server_wal_end: Lsn(300),
            ..StreamProgress::default()
        };
        let lag = |m: &CaptureMetrics| sample(&m.encode(), "asof_lag_seconds").and_then(|v| v.parse::<f64>().ok());
        let m = CaptureMetrics::new();
        m.observe(&CaptureEvent::Stream(behind));
        assert!(lag(&m).is_some_and(|s| s >= 3599.0), "{:?}", lag(&m));
        m.observe(&CaptureEvent::Stream(StreamProgress {
            server_wal_end: Lsn(100),
            ..behind
        }));
        assert_eq!(lag(&m), Some(0.0));
        // Behind again after a quiet hour: not an hour behind.
        m.observe(&CaptureEvent::Stream(behind));
        assert!(lag(&m).is_some_and(|s| s < 60.0), "{:?}", lag(&m));
    }
}
