use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn all(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().expect("text").to_string())
        .collect()
}

fn elb() -> TrustedProxies {
    TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")])
}

const HOSTILE: &[(&str, &str)] = &[
    ("host", "ignored.example"),
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "http"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "80"),
    ("x-real-ip", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6;proto=http;host=evil.example"),
];

#[test]
fn untrusted_peer_gets_its_forwarding_headers_replaced() {
    let mut h = map(HOSTILE);
    let peer: IpAddr = "192.0.2.7".parse().expect("ip");
    let client = client_address(&h, peer, &elb());
    set_forwarding(
        &mut h,
        peer,
        client,
        HeaderValue::from_static("reg.example:5043"),
        &elb(),
    );
    assert_eq!(client, peer);
    assert_eq!(all(&h, "host"), ["reg.example:5043"]);
    assert_eq!(all(&h, "x-forwarded-for"), ["192.0.2.7"]);
    assert_eq!(all(&h, "x-forwarded-proto"), ["https"]);
    assert_eq!(all(&h, "x-real-ip"), ["192.0.2.7"]);
    assert!(all(&h, "x-forwarded-host").is_empty());
    assert!(all(&h, "x-forwarded-port").is_empty());
    assert!(all(&h, "forwarded").is_empty());
}

#[test]
fn trusted_peer_keeps_its_headers_and_is_appended() {
    let mut h = map(&[
        ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "registry.example.com"),
        ("x-forwarded-port", "443"),
        ("x-real-ip", "10.9.9.9"),
    ]);
    let peer: IpAddr = "10.0.0.5".parse().expect("ip");
    let client = client_address(&h, peer, &elb());
    set_forwarding(
        &mut h,
        peer,
        client,
        HeaderValue::from_static("registry.example.com"),
        &elb(),
    );
    assert_eq!(client, "203.0.113.9".parse::<IpAddr>().expect("ip"));
    assert_eq!(
        all(&h, "x-forwarded-for"),
        ["203.0.113.9, 10.1.1.1, 10.0.0.5"]
    );
    assert_eq!(all(&h, "x-forwarded-proto"), ["https"]);
    assert_eq!(all(&h, "x-forwarded-host"), ["registry.example.com"]);
    assert_eq!(all(&h, "x-forwarded-port"), ["443"]);
    assert_eq!(all(&h, "x-real-ip"), ["203.0.113.9"]);
    assert_eq!(all(&h, "host"), ["registry.example.com"]);
}

#[test]
fn trusted_peer_without_headers_gets_defaults() {
    let mut h = HeaderMap::new();
    let peer: IpAddr = "::ffff:10.0.0.5".parse().expect("ip");
    let client = client_address(&h, peer, &elb());
    set_forwarding(
        &mut h,
        peer,
        client,
        HeaderValue::from_static("r:1"),
        &elb(),
    );
    assert_eq!(client, "10.0.0.5".parse::<IpAddr>().expect("ip"));
    assert_eq!(all(&h, "x-forwarded-for"), ["10.0.0.5"]);
    assert_eq!(all(&h, "x-forwarded-proto"), ["https"]);
    assert_eq!(all(&h, "x-real-ip"), ["10.0.0.5"]);
}

#[test]
fn real_client_search_stops_at_garbage_or_untrusted() {
    let cases = [
        ("1.1.1.1, 10.0.0.1, 10.0.0.2", "1.1.1.1"),
        ("10.0.0.3, 10.0.0.1", "10.0.0.3"),
        ("1.1.1.1, bogus, 10.0.0.1", "10.0.0.1"),
        ("2.2.2.2,1.1.1.1", "1.1.1.1"),
    ];
    for (xff, want) in cases {
        let h = map(&[("x-forwarded-for", xff)]);
        let got = client_behind(&h, "10.0.0.9".parse().expect("ip"), &elb());
        assert_eq!(got, want.parse::<IpAddr>().expect("ip"), "xff={xff:?}");
    }
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-foo"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("x-secret", "1"),
        ("content-length", "5"),
        ("docker-content-digest", "sha256:abc"),
        ("range", "0-4"),
    ]);
    strip_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-length", "docker-content-digest", "range"]);
}

#[test]
fn each_hop_by_hop_header_alone_is_removed() {
    // Each alone, so the pass that skips maps without any must notice every one.
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        let mut h = map(&[(name, "x"), ("content-length", "5")]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-length"], "name={name:?}");
    }
    let mut h = map(&[("content-length", "5"), ("range", "0-4")]);
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 2, "a map without hop-by-hop headers is left whole");
}

#[test]
fn api_version_is_added_once() {
    let mut h = HeaderMap::new();
    ensure_api_version(&mut h);
    ensure_api_version(&mut h);
    assert_eq!(all(&h, "docker-distribution-api-version"), ["registry/2.0"]);
    let mut h = map(&[("docker-distribution-api-version", "registry/2.0")]);
    ensure_api_version(&mut h);
    assert_eq!(all(&h, "docker-distribution-api-version"), ["registry/2.0"]);
}

#[test]
fn trusted_proto_is_one_value_the_first() {
    let cases: &[(&[&str], &str)] = &[
        (&["https, http"], "https"),
        (&["http"], "http"),
        (&["http", "https"], "http"),
        (&["HTTPS"], "https"),
        (&["gopher"], "https"),
        (&[], "https"),
    ];
    for (values, want) in cases {
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("x-forwarded-proto", *v)).collect();
        let mut h = map(&pairs);
        let peer: IpAddr = "10.0.0.5".parse().expect("ip");
        let client = client_address(&h, peer, &elb());
        set_forwarding(&mut h, peer, client, HeaderValue::from_static("r"), &elb());
        assert_eq!(all(&h, "x-forwarded-proto"), [*want], "values={values:?}");
    }
}

#[test]
fn security_headers_are_added_only_when_missing() {
    let hsts = HeaderValue::from_static("max-age=31536000");
    let mut h = HeaderMap::new();
    add_security_headers(&mut h, Some(&hsts));
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // The registry's own values stay, once each.
    let mut h = HeaderMap::new();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=60"),
    );
    add_security_headers(&mut h, Some(&hsts));
    assert_eq!(h.get_all("x-content-type-options").iter().count(), 1);
    assert_eq!(h["strict-transport-security"], "max-age=60");
    // HSTS off: nosniff only.
    let mut h = HeaderMap::new();
    add_security_headers(&mut h, None);
    assert!(!h.contains_key("strict-transport-security"));
    assert_eq!(h["x-content-type-options"], "nosniff");
}
