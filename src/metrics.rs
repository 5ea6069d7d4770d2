//! What the gate counts, for `/metrics` on the admin listener.
//!
//! One [`Metrics`] lives as long as the process: reloads carry it over, so
//! counters only ever grow. Every label has a fixed, small set of values
//! (method, status class, outcome), never a user name, path or address, so the
//! number of series stays bounded whatever clients send. The text is the
//! OpenMetrics format of `prometheus-client`, which Prometheus scrapes natively.

use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request method, folded to a fixed set.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    /// `GET`.
    GET,
    /// `HEAD`.
    HEAD,
    /// `POST`.
    POST,
    /// `PUT`.
    PUT,
    /// `PATCH`.
    PATCH,
    /// `DELETE`.
    DELETE,
    /// Any other method.
    OTHER,
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Method {
        match *m {
            http::Method::GET => Method::GET,
            http::Method::HEAD => Method::HEAD,
            http::Method::POST => Method::POST,
            http::Method::PUT => Method::PUT,
            http::Method::PATCH => Method::PATCH,
            http::Method::DELETE => Method::DELETE,
            _ => Method::OTHER,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Method,
    /// `2xx`, `4xx`, ...
    status: &'static str,
}

/// How a login check ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AuthResult {
    /// Valid credentials, checked by hashing.
    success,
    /// Valid credentials, found in the login cache.
    cache_hit,
    /// Unknown user or wrong password.
    failure,
    /// The sign-in directory could not be asked (answered 503).
    unavailable,
}

impl AuthResult {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [AuthResult; 4] = [
        AuthResult::success,
        AuthResult::cache_hit,
        AuthResult::failure,
        AuthResult::unavailable,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    result: AuthResult,
}

/// How a TLS handshake (or the PROXY header before it) failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum HandshakeFailure {
    /// The TLS handshake failed.
    error,
    /// The client did not finish within `listen.handshake_timeout`.
    timeout,
    /// `listen.proxy_protocol` is on and the PROXY header was missing or malformed.
    proxy_protocol,
    /// The client spoke plain HTTP to the TLS port (answered 400).
    plain_http,
}

impl HandshakeFailure {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [HandshakeFailure; 4] = [
        HandshakeFailure::error,
        HandshakeFailure::timeout,
        HandshakeFailure::proxy_protocol,
        HandshakeFailure::plain_http,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    reason: HandshakeFailure,
}

/// Which timeout closed a connection or ended a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ConnectionTimeout {
    /// No request came within `listen.idle_timeout`.
    idle,
    /// A request head did not complete within `listen.header_timeout`.
    header,
    /// A request body sent nothing for `listen.body_timeout`.
    body,
    /// The client took none of the gate's bytes for `listen.send_timeout`.
    send,
}

impl ConnectionTimeout {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [ConnectionTimeout; 4] = [
        ConnectionTimeout::idle,
        ConnectionTimeout::header,
        ConnectionTimeout::body,
        ConnectionTimeout::send,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    timeout: ConnectionTimeout,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// The values of `registry_gate_reloads_total{result}`.
const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

/// The crate version, and the commit when the build names one in
/// `REGISTRY_GATE_COMMIT` (there is no build script: a build outside git, from a
/// tarball or crates.io, must work, and then has no commit to give).
fn build_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("version", env!("CARGO_PKG_VERSION"))];
    if let Some(commit) = option_env!("REGISTRY_GATE_COMMIT").filter(|c| !c.is_empty()) {
        labels.push(("commit", commit));
    }
    labels
}

/// An LDAP operation.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LdapOp {
    /// A simple bind: the search identity on a new connection, or a user's password check.
    bind,
    /// A search for a user or their groups.
    search,
}

impl LdapOp {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [LdapOp; 2] = [LdapOp::bind, LdapOp::search];
}

/// How an LDAP operation ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LdapOutcome {
    /// Success.
    ok,
    /// The directory answered with an error code (a wrong password is one).
    refused,
    /// No answer: connection failure or timeout.
    error,
}

impl LdapOutcome {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [LdapOutcome; 3] = [LdapOutcome::ok, LdapOutcome::refused, LdapOutcome::error];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapLabels {
    op: LdapOp,
    result: LdapOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapOpLabels {
    op: LdapOp,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The LDAP part of the metrics: a cheap handle the directory client keeps.
#[derive(Clone, Debug)]
pub struct LdapMetrics {
    operations: Family<LdapLabels, Counter>,
    duration: HistogramFamily<LdapOpLabels>,
}

impl LdapMetrics {
    fn new() -> LdapMetrics {
        fn buckets() -> Histogram {
            // 0.5 ms to ~16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        }
        let operations: Family<LdapLabels, Counter> = Family::default();
        for op in LdapOp::ALL {
            for result in LdapOutcome::ALL {
                drop(operations.get_or_create(&LdapLabels { op, result }));
            }
        }
        LdapMetrics {
            operations,
            duration: Family::new_with_constructor(buckets),
        }
    }

    /// Counts one operation and its duration.
    pub fn record(&self, op: LdapOp, result: LdapOutcome, elapsed: Duration) {
        self.operations
            .get_or_create(&LdapLabels { op, result })
            .inc();
        self.duration
            .get_or_create(&LdapOpLabels { op })
            .observe(elapsed.as_secs_f64());
    }
}

/// The gate's counters, gauges and histograms.
#[derive(Debug)]
pub struct Metrics {
    /// LDAP binds and searches (a handle for the directory client).
    pub ldap: LdapMetrics,
    tokens: Counter,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    auth: Family<AuthLabels, Counter>,
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
    /// Registers every metric under the `registry_gate_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("registry_gate");
        let m = Metrics {
            requests: Family::default(),
            auth: Family::default(),
            throttled: Counter::default(),
            password_checks: Counter::default(),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            // 1 ms to ~65 s.
            upstream_latency: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            active_uploads: Gauge::default(),
            open_connections: Gauge::default(),
            handshake_failures: Family::default(),
            timeouts: Family::default(),
            reloads: Family::default(),
            last_reload_success: Gauge::default(),
            last_reload_time: Gauge::default(),
            htpasswd_ignored_lines: Gauge::default(),
            groups_ignored_lines: Gauge::default(),
            ldap: LdapMetrics::new(),
            tokens: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests answered, by method and status class",
            m.requests.clone(),
        );
        registry.register(
            "auth",
            "Login checks by result (cache_hit: valid credentials found in the login cache)",
            m.auth.clone(),
        );
        registry.register(
            "throttled",
            "Requests refused with 429 for too many failed logins",
            m.throttled.clone(),
        );
        registry.register(
            "password_checks",
            "Password hashes checked by the gate (htpasswd entries and the dummy for unknown users; LDAP binds are in ldap_operations)",
            m.password_checks.clone(),
        );
        registry.register_with_unit(
            "received",
            "Request body bytes received from clients",
            Unit::Bytes,
            m.received_bytes.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Response body bytes sent to clients",
            Unit::Bytes,
            m.sent_bytes.clone(),
        );
        registry.register_with_unit(
            "upstream_duration",
            "Time from sending a request to the registry to its response head",
            Unit::Seconds,
            m.upstream_latency.clone(),
        );
        registry.register(
            "active_uploads",
            "Request bodies (blob and manifest uploads) being streamed to the registry",
            m.active_uploads.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open",
            m.open_connections.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "Connections dropped before the first request: TLS handshake error or timeout, or a bad PROXY header",
            m.handshake_failures.clone(),
        );
        registry.register(
            "client_timeouts",
            "Connections closed idle, with a request head unfinished or with a write the client never took, and request bodies ended silent (listen.*_timeout)",
            m.timeouts.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads by result",
            m.reloads.clone(),
        );
        registry.register(
            "last_reload_success",
            "1 if the last reload (or the start) succeeded, 0 if it failed",
            m.last_reload_success.clone(),
        );
        registry.register_with_unit(
            "last_reload_timestamp",
            "Unix time of the last reload attempt (or the start)",
            Unit::Seconds,
            m.last_reload_time.clone(),
        );
        registry.register(
            "htpasswd_ignored_lines",
            "Lines of auth.htpasswd the last build of the configuration ignored (unusable or duplicate; each costs only its own user)",
            m.htpasswd_ignored_lines.clone(),
        );
        registry.register(
            "groups_ignored_lines",
            "Lines of auth.groups the last build of the configuration ignored (each costs only its own line)",
            m.groups_ignored_lines.clone(),
        );
        registry.register(
            "ldap_operations",
            "LDAP binds and searches by result (refused: the directory said no, e.g. a wrong password; error: no answer)",
            m.ldap.operations.clone(),
        );
        registry.register_with_unit(
            "ldap_duration",
            "Time an LDAP bind or search took",
            Unit::Seconds,
            m.ldap.duration.clone(),
        );
        registry.register(
            "tokens_issued",
            "Access tokens issued by the token endpoint (token mode)",
            m.tokens.clone(),
        );
        let build_info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build_info.get_or_create(&build_labels()).set(1);
        registry.register(
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

/// Holds a gauge up by one while alive.
#[derive(Debug)]
pub struct Tracked(Gauge);

impl Tracked {
    /// Increments `gauge` until the returned guard is dropped.
    pub fn new(gauge: &Gauge) -> Tracked {
        gauge.inc();
        Tracked(gauge.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"))
    }

    #[test]
    fn counters_move_and_labels_stay_bounded() {
        let m = Metrics::new();
        m.request(&http::Method::GET, http::StatusCode::OK);
        m.request(&http::Method::GET, http::StatusCode::NO_CONTENT);
        m.request(
            &http::Method::from_bytes(b"PROPFIND").expect("method"),
            http::StatusCode::NOT_FOUND,
        );
        m.auth(AuthResult::cache_hit);
        m.password_checks().inc();
        m.bytes(10, 20);
        m.upstream_latency(Duration::from_millis(3));
        m.handshake_failure(HandshakeFailure::timeout);
        m.reload(false);
        m.htpasswd_ignored_lines(2);
        m.groups_ignored_lines(1);
        let text = m.render();
        assert_eq!(
            line(&text, "registry_gate_requests_total{method=\"GET\""),
            "registry_gate_requests_total{method=\"GET\",status=\"2xx\"} 2"
        );
        assert!(
            text.contains("registry_gate_requests_total{method=\"OTHER\",status=\"4xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_auth_total{result=\"cache_hit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_password_checks_total 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_received_bytes_total 10"),
            "{text}"
        );
        assert!(text.contains("registry_gate_sent_bytes_total 20"), "{text}");
        assert!(
            text.contains("registry_gate_upstream_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_tls_handshake_failures_total{reason=\"timeout\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_reloads_total{result=\"failure\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("registry_gate_last_reload_success 0"),
            "{text}"
        );
        assert_eq!(
            line(&text, "registry_gate_htpasswd_ignored_lines "),
            "registry_gate_htpasswd_ignored_lines 2"
        );
        assert_eq!(
            line(&text, "registry_gate_groups_ignored_lines "),
            "registry_gate_groups_ignored_lines 1"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn known_series_exist_at_zero_from_the_start() {
        let text = Metrics::new().render();
        let expected = [
            "registry_gate_auth_total{result=\"success\"} 0",
            "registry_gate_auth_total{result=\"cache_hit\"} 0",
            "registry_gate_auth_total{result=\"failure\"} 0",
            "registry_gate_auth_total{result=\"unavailable\"} 0",
            "registry_gate_tls_handshake_failures_total{reason=\"error\"} 0",
            "registry_gate_tls_handshake_failures_total{reason=\"timeout\"} 0",
            "registry_gate_tls_handshake_failures_total{reason=\"proxy_protocol\"} 0",
            "registry_gate_tls_handshake_failures_total{reason=\"plain_http\"} 0",
            "registry_gate_client_timeouts_total{timeout=\"idle\"} 0",
            "registry_gate_client_timeouts_total{timeout=\"header\"} 0",
            "registry_gate_client_timeouts_total{timeout=\"body\"} 0",
            "registry_gate_client_timeouts_total{timeout=\"send\"} 0",
            "registry_gate_reloads_total{result=\"success\"} 0",
            "registry_gate_reloads_total{result=\"failure\"} 0",
            "registry_gate_ldap_operations_total{op=\"bind\",result=\"ok\"} 0",
            "registry_gate_ldap_operations_total{op=\"bind\",result=\"refused\"} 0",
            "registry_gate_ldap_operations_total{op=\"bind\",result=\"error\"} 0",
            "registry_gate_ldap_operations_total{op=\"search\",result=\"ok\"} 0",
            "registry_gate_ldap_operations_total{op=\"search\",result=\"refused\"} 0",
            "registry_gate_ldap_operations_total{op=\"search\",result=\"error\"} 0",
        ];
        for series in expected {
            assert!(
                text.lines().any(|l| l == series),
                "no {series:?} in\n{text}"
            );
        }
        // Traffic-labelled series appear with their first request, not before.
        assert!(!text.contains("registry_gate_requests_total{"), "{text}");
    }

    #[test]
    fn build_info_names_the_version() {
        let text = Metrics::new().render();
        assert!(
            text.contains("# TYPE registry_gate_build_info gauge"),
            "{text}"
        );
        let info = line(&text, "registry_gate_build_info{");
        let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
        assert!(info.contains(&version), "{info}");
        assert!(info.ends_with("} 1"), "{info}");
    }

    #[test]
    fn init_does_not_hide_counts() {
        let m = Metrics::new();
        m.auth(AuthResult::failure);
        m.handshake_failure(HandshakeFailure::plain_http);
        m.reload(true);
        let text = m.render();
        for series in [
            "registry_gate_auth_total{result=\"failure\"} 1",
            "registry_gate_auth_total{result=\"success\"} 0",
            "registry_gate_tls_handshake_failures_total{reason=\"plain_http\"} 1",
            "registry_gate_reloads_total{result=\"success\"} 1",
            "registry_gate_reloads_total{result=\"failure\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == series),
                "no {series:?} in\n{text}"
            );
        }
    }

    #[test]
    fn tracked_gauges_fall_back_when_dropped() {
        let m = Metrics::new();
        let a = Tracked::new(m.active_uploads());
        let b = Tracked::new(m.active_uploads());
        assert!(m.render().contains("registry_gate_active_uploads 2"));
        drop(a);
        drop(b);
        assert!(m.render().contains("registry_gate_active_uploads 0"));
    }
}
