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
