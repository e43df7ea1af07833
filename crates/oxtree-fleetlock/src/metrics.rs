//! The server's Prometheus metrics (text exposition on `[status]`'s
//! `/metrics`): requests by endpoint and result, lock grant latency, and
//! per-group slots and holders read from etcd at scrape time, so every
//! replica reports the fleet's state, not its own share of it.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    grant_seconds: Histogram,
    slots: Family<Labels, Gauge>,
    holders: Family<Labels, Gauge>,
    etcd_up: Gauge,
    halted: Gauge,
    reloads: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fleetlock");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "FleetLock requests by endpoint and result (ok or the error kind)",
            requests.clone(),
        );
        let grant_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "lock_grant_seconds",
            "Time to grant a pre-reboot lock through etcd",
            grant_seconds.clone(),
        );
        let slots = Family::<Labels, Gauge>::default();
        registry.register("group_slots", "Configured slots per group", slots.clone());
        let holders = Family::<Labels, Gauge>::default();
        registry.register(
            "group_holders",
            "Current slot holders per group, from etcd",
            holders.clone(),
        );
        let etcd_up = Gauge::default();
        registry.register(
            "etcd_up",
            "1 when etcd answered the last scrape",
            etcd_up.clone(),
        );
        let halted = Gauge::default();
        registry.register(
            "rollout_halted",
            "1 when a canary's rollback halted the rollout",
            halted.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            grant_seconds,
            slots,
            holders,
            etcd_up,
            halted,
            reloads,
        }
    }

    pub fn request(&self, endpoint: &str, result: &str) {
        self.requests
            .get_or_create(&vec![
                ("endpoint".into(), endpoint.into()),
                ("result".into(), result.into()),
            ])
            .inc();
    }

    pub fn granted(&self, seconds: f64) {
        self.grant_seconds.observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&vec![(
                "result".into(),
                if ok { "ok" } else { "failed" }.into(),
            )])
            .inc();
    }

    /// Sets the per-group gauges; `holders` is `None` when etcd failed.
    pub fn group(&self, group: &str, slots: u64, holders: Option<usize>) {
        let l = vec![("group".to_owned(), group.to_owned())];
        self.slots.get_or_create(&l).set(slots as i64);
        if let Some(h) = holders {
            self.holders.get_or_create(&l).set(h as i64);
        }
    }

    pub fn etcd(&self, up: bool, halted: bool) {
        self.etcd_up.set(up as i64);
        self.halted.set(halted as i64);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String");
        s
    }
}
