//! What the gate counts, for `/metrics` on the admin listener.
//!
//! One [`Metrics`] lives as long as the process: reloads carry it over, so
//! counters only ever grow. Every label has a fixed, small set of values
//! (method, status class, outcome), never a user name, path or address, so the
//! number of series stays bounded whatever clients send. The text is the
//! OpenMetrics format of `prometheus-client`, which Prometheus scrapes natively.

use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry, Unit};

mod labels;
mod ldap;
mod tracked;

use labels::{
    build_labels, AuthLabels, HandshakeLabels, MachineLabels, ReloadLabels, RequestLabels,
    TimeoutLabels, RELOAD_RESULTS,
};
pub use labels::{AuthResult, ConnectionTimeout, HandshakeFailure, MachineKind, MachineResult};
pub use ldap::{LdapMetrics, LdapOp, LdapOutcome};
pub use tracked::Tracked;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The gate's counters, gauges and histograms.
#[derive(Debug)]
pub struct Metrics {
    /// LDAP binds and searches (a handle for the directory client).
    pub ldap: LdapMetrics,
    tokens: Counter,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    auth: Family<AuthLabels, Counter>,
    machine_logins: Family<MachineLabels, Counter>,
    throttled: Counter,
    password_checks: Counter,
    received_bytes: Counter,
    sent_bytes: Counter,
    upstream_latency: Histogram,
    active_uploads: Gauge,
    open_connections: Gauge,
    handshake_failures: Family<HandshakeLabels, Counter>,
    timeouts: Family<TimeoutLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge,
    last_reload_time: Gauge,
    htpasswd_ignored_lines: Gauge,
    groups_ignored_lines: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `registry_gate_` prefix, in the order
    /// `/metrics` lists them.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("registry_gate");
        let r = &mut registry;
        let m = Metrics {
            requests: register(
                r,
                "requests",
                "Requests answered, by method and status class",
                Family::default(),
            ),
            auth: register(
                r,
                "auth",
                "Login checks by result (cache_hit: valid credentials found in the login cache)",
                Family::default(),
            ),
            machine_logins: register(
                r,
                "machine_logins",
                "Robot and OIDC logins by kind and result (refused: an expired robot or a rotated secret past its grace)",
                Family::default(),
            ),
            throttled: register(
                r,
                "throttled",
                "Requests refused with 429 for too many failed logins",
                Counter::default(),
            ),
            password_checks: register(
                r,
                "password_checks",
                "Password hashes checked by the gate (htpasswd entries and the dummy for unknown users; LDAP binds are in ldap_operations)",
                Counter::default(),
            ),
            received_bytes: register_with_unit(
                r,
                "received",
                "Request body bytes received from clients",
                Unit::Bytes,
                Counter::default(),
            ),
            sent_bytes: register_with_unit(
                r,
                "sent",
                "Response body bytes sent to clients",
                Unit::Bytes,
                Counter::default(),
            ),
            upstream_latency: register_with_unit(
                r,
                "upstream_duration",
                "Time from sending a request to the registry to its response head",
                Unit::Seconds,
                // 1 ms to ~65 s.
                Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            ),
            active_uploads: register(
                r,
                "active_uploads",
                "Request bodies (blob and manifest uploads) being streamed to the registry",
                Gauge::default(),
            ),
            open_connections: register(
                r,
                "open_connections",
                "Client connections open",
                Gauge::default(),
            ),
            handshake_failures: register(
                r,
                "tls_handshake_failures",
                "Connections dropped before the first request: TLS handshake error or timeout, or a bad PROXY header",
                Family::default(),
            ),
            timeouts: register(
                r,
                "client_timeouts",
                "Connections closed idle, with a request head unfinished or with a write the client never took, and request bodies ended silent (listen.*_timeout)",
                Family::default(),
            ),
            reloads: register(
                r,
                "reloads",
                "Configuration reloads by result",
                Family::default(),
            ),
            last_reload_success: register(
                r,
                "last_reload_success",
                "1 if the last reload (or the start) succeeded, 0 if it failed",
                Gauge::default(),
            ),
            last_reload_time: register_with_unit(
                r,
                "last_reload_timestamp",
                "Unix time of the last reload attempt (or the start)",
                Unit::Seconds,
                Gauge::default(),
            ),
            htpasswd_ignored_lines: register(
                r,
                "htpasswd_ignored_lines",
                "Lines of auth.htpasswd the last build of the configuration ignored (unusable or duplicate; each costs only its own user)",
                Gauge::default(),
            ),
            groups_ignored_lines: register(
                r,
                "groups_ignored_lines",
                "Lines of auth.groups the last build of the configuration ignored (each costs only its own line)",
                Gauge::default(),
            ),
            ldap: LdapMetrics::register(r),
            tokens: register(
                r,
                "tokens_issued",
                "Access tokens issued by the token endpoint (token mode)",
                Counter::default(),
            ),
            registry: Registry::default(),
        };
        let build_info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build_info.get_or_create(&build_labels()).set(1);
        register(
            r,
            "build_info",
            "Always 1; its labels say which build runs (version, and commit when the build named one)",
            build_info,
        );
        m.last_reload_success.set(1);
        m.last_reload_time.set(unix_now());
        m.create_known_series();
        Metrics { registry, ..m }
    }

    /// Makes every series whose labels are known in advance exist at 0, so that
    /// dashboards and `rate()` see them before the first event. Series labelled by
    /// traffic (method and status) appear with their first request.
    fn create_known_series(&self) {
        for result in AuthResult::ALL {
            drop(self.auth.get_or_create(&AuthLabels { result }));
        }
        for kind in [MachineKind::robot, MachineKind::oidc] {
            for result in MachineResult::ALL {
                drop(
                    self.machine_logins
                        .get_or_create(&MachineLabels { kind, result }),
                );
            }
        }
        for reason in HandshakeFailure::ALL {
            drop(
                self.handshake_failures
                    .get_or_create(&HandshakeLabels { reason }),
            );
        }
        for timeout in ConnectionTimeout::ALL {
            drop(self.timeouts.get_or_create(&TimeoutLabels { timeout }));
        }
        for result in RELOAD_RESULTS {
            drop(self.reloads.get_or_create(&ReloadLabels { result }));
        }
    }

    /// Counts one answered request.
    pub fn request(&self, method: &http::Method, status: http::StatusCode) {
        let status = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels {
                method: method.into(),
                status,
            })
            .inc();
    }

    /// Counts one login check.
    pub fn auth(&self, result: AuthResult) {
        self.auth.get_or_create(&AuthLabels { result }).inc();
    }

    /// Counts one robot or OIDC login.
    pub fn machine_login(&self, kind: MachineKind, result: MachineResult) {
        self.machine_logins
            .get_or_create(&MachineLabels { kind, result })
            .inc();
    }

    /// Counts one access token issued.
    pub fn token_issued(&self) {
        self.tokens.inc();
    }

    /// Counts one request refused by the throttle.
    pub fn throttled(&self) {
        self.throttled.inc();
    }

    /// The password-checks counter, for the authenticator to count its hash checks.
    pub fn password_checks(&self) -> &Counter {
        &self.password_checks
    }

    /// Adds request and response body bytes.
    pub fn bytes(&self, received: u64, sent: u64) {
        self.received_bytes.inc_by(received);
        self.sent_bytes.inc_by(sent);
    }

    /// Records how long the registry took to answer.
    pub fn upstream_latency(&self, elapsed: Duration) {
        self.upstream_latency.observe(elapsed.as_secs_f64());
    }

    /// The active-uploads gauge, for [`Tracked`].
    pub fn active_uploads(&self) -> &Gauge {
        &self.active_uploads
    }

    /// The open-connections gauge, for [`Tracked`].
    pub fn open_connections(&self) -> &Gauge {
        &self.open_connections
    }

    /// Counts one connection dropped before its first request.
    pub fn handshake_failure(&self, reason: HandshakeFailure) {
        self.handshake_failures
            .get_or_create(&HandshakeLabels { reason })
            .inc();
    }

    /// Counts one connection or request ended by a client-side timeout.
    pub fn connection_timeout(&self, timeout: ConnectionTimeout) {
        self.timeouts
            .get_or_create(&TimeoutLabels { timeout })
            .inc();
    }

    /// Records a reload attempt.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
        self.last_reload_success.set(i64::from(ok));
        self.last_reload_time.set(unix_now());
    }

    /// Sets how many lines of the htpasswd file the last build ignored.
    pub fn htpasswd_ignored_lines(&self, lines: usize) {
        self.htpasswd_ignored_lines
            .set(i64::try_from(lines).unwrap_or(i64::MAX));
    }

    /// Sets how many lines of the group file the last build ignored.
    pub fn groups_ignored_lines(&self, lines: usize) {
        self.groups_ignored_lines
            .set(i64::try_from(lines).unwrap_or(i64::MAX));
    }

    /// The text exposition, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        text
    }
}

/// Registers `metric` as `name` and hands it back, so that a field and its
/// registration are one expression.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// [`register`] with a unit, which `/metrics` appends to the name.
fn register_with_unit<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Unit,
    metric: M,
) -> M {
    registry.register_with_unit(name, help, unit, metric.clone());
    metric
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
