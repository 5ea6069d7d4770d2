use super::*;

use Action::{Delete, Pull, Push};

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("test method is a token")
}

fn manifest(reference: &str) -> Target {
    Target::Manifest {
        reference: reference.to_owned(),
    }
}

fn blob(digest: &str) -> Target {
    Target::Blob {
        digest: digest.to_owned(),
    }
}

fn upload(session: Option<&str>) -> Target {
    Target::Upload {
        session: session.map(str::to_owned),
    }
}

fn access(target: Target, repository: &str, actions: &[Action], from: Option<&str>) -> Access {
    Access {
        target,
        repository: Some(repository.to_owned()),
        actions: actions.to_vec(),
        mount_from: from.map(str::to_owned),
    }
}

fn global(target: Target) -> Access {
    Access {
        target,
        repository: None,
        actions: Vec::new(),
        mount_from: None,
    }
}

fn name_err(name: &str, problem: NameError) -> Error {
    Error::Name {
        name: name.to_owned(),
        problem,
    }
}

fn method_err(m: &str, route: &'static str) -> Error {
    Error::Method {
        method: method(m),
        route,
    }
}

/// Method, path, query and the expected result.
type Case<'a> = (&'a str, String, Option<&'a str>, Result<Access, Error>);

fn check(cases: &[Case<'_>]) {
    assert!(!cases.is_empty());
    for (m, path, query, want) in cases {
        let got = classify(&method(m), path, *query);
        assert_eq!(&got, want, "method={m} path={path:?} query={query:?}");
    }
}

#[test]
fn base_and_catalog() {
    let catalog = || global(Target::Catalog);
    check(&[
        ("GET", "/v2/".into(), None, Ok(global(Target::Base))),
        ("HEAD", "/v2/".into(), Some("x=1"), Ok(global(Target::Base))),
        ("GET", "/v2/_catalog".into(), None, Ok(catalog())),
        (
            "GET",
            "/v2/_catalog".into(),
            Some("n=10&last=x"),
            Ok(catalog()),
        ),
        // The registry asks for `from` only on routes with a name.
        (
            "GET",
            "/v2/_catalog".into(),
            Some("from=Bad;"),
            Ok(catalog()),
        ),
    ]);
}

#[test]
fn manifests_tags_and_referrers() {
    let tag128 = format!("A{}", "b.-_".repeat(32).get(..127).expect("127"));
    let referrers = Target::Referrers { digest: D.into() };
    check(&[
        (
            "GET",
            "/v2/a/b/c/manifests/latest".into(),
            None,
            Ok(access(manifest("latest"), "a/b/c", &[Pull], None)),
        ),
        (
            "HEAD",
            "/v2/a/b/c/manifests/latest".into(),
            None,
            Ok(access(manifest("latest"), "a/b/c", &[Pull], None)),
        ),
        (
            "PUT",
            "/v2/a/b/c/manifests/v1.0".into(),
            None,
            Ok(access(manifest("v1.0"), "a/b/c", &[Pull, Push], None)),
        ),
        (
            "DELETE",
            format!("/v2/library/ubuntu/manifests/{D}"),
            None,
            Ok(access(manifest(D), "library/ubuntu", &[Delete], None)),
        ),
        (
            "GET",
            "/v2/a/manifests/_x".into(),
            None,
            Ok(access(manifest("_x"), "a", &[Pull], None)),
        ),
        (
            "GET",
            format!("/v2/a/manifests/{tag128}"),
            None,
            Ok(access(manifest(&tag128), "a", &[Pull], None)),
        ),
        // The registry's regexp: the name runs up to the last `/manifests/`.
        (
            "GET",
            "/v2/a/manifests/b/manifests/latest".into(),
            None,
            Ok(access(manifest("latest"), "a/manifests/b", &[Pull], None)),
        ),
        (
            "GET",
            "/v2/a/tags/list".into(),
            None,
            Ok(access(Target::Tags, "a", &[Pull], None)),
        ),
        (
            "GET",
            "/v2/a/b/tags/list".into(),
            Some("n=5&last=x"),
            Ok(access(Target::Tags, "a/b", &[Pull], None)),
        ),
        (
            "GET",
            "/v2/a/manifests/tags/list".into(),
            None,
            Ok(access(Target::Tags, "a/manifests", &[Pull], None)),
        ),
        (
            "GET",
            "/v2/manifests/tags/list".into(),
            None,
            Ok(access(Target::Tags, "manifests", &[Pull], None)),
        ),
        (
            "GET",
            format!("/v2/a/b/referrers/{D}"),
            Some("artifactType=application%2Fvnd.example%2Bjson"),
            Ok(access(referrers.clone(), "a/b", &[Pull], None)),
        ),
        (
            "GET",
            format!("/v2/a/referrers/b/referrers/{D}"),
            None,
            Ok(access(referrers, "a/referrers/b", &[Pull], None)),
        ),
    ]);
}

#[test]
fn blobs_and_uploads() {
    let weird = "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=";
    check(&[
        (
            "GET",
            format!("/v2/a/b/blobs/{D}"),
            None,
            Ok(access(blob(D), "a/b", &[Pull], None)),
        ),
        (
            "HEAD",
            format!("/v2/a/b/blobs/{D}"),
            None,
            Ok(access(blob(D), "a/b", &[Pull], None)),
        ),
        (
            "DELETE",
            format!("/v2/a/b/blobs/{D}"),
            None,
            Ok(access(blob(D), "a/b", &[Delete], None)),
        ),
        (
            "GET",
            format!("/v2/a/blobs/{weird}"),
            None,
            Ok(access(blob(weird), "a", &[Pull], None)),
        ),
        (
            "GET",
            format!("/v2/a/blobs/uploads/blobs/{D}"),
            None,
            Ok(access(blob(D), "a/blobs/uploads", &[Pull], None)),
        ),
        (
            "POST",
            "/v2/a/b/blobs/uploads/".into(),
            None,
            Ok(access(upload(None), "a/b", &[Pull, Push], None)),
        ),
        (
            "POST",
            "/v2/a/b/blobs/uploads/".into(),
            Some(&format!("digest={D}")),
            Ok(access(upload(None), "a/b", &[Pull, Push], None)),
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/blobs/uploads/".into(),
            None,
            Ok(access(upload(None), "a/blobs/uploads", &[Pull, Push], None)),
        ),
        (
            "GET",
            "/v2/a/blobs/uploads/5b3f-9a_c.d=".into(),
            None,
            Ok(access(upload(Some("5b3f-9a_c.d=")), "a", &[Pull], None)),
        ),
        (
            "HEAD",
            "/v2/a/blobs/uploads/u1".into(),
            None,
            Ok(access(upload(Some("u1")), "a", &[Pull], None)),
        ),
        (
            "PATCH",
            "/v2/a/b/blobs/uploads/u1".into(),
            Some("_state=AbC%3D%3D"),
            Ok(access(upload(Some("u1")), "a/b", &[Pull, Push], None)),
        ),
        (
            "PUT",
            "/v2/a/b/blobs/uploads/u1".into(),
            Some(&format!("_state=x&digest={D}")),
            Ok(access(upload(Some("u1")), "a/b", &[Pull, Push], None)),
        ),
        (
            "DELETE",
            "/v2/a/b/blobs/uploads/u1".into(),
            None,
            Ok(access(upload(Some("u1")), "a/b", &[Delete], None)),
        ),
    ]);
}

#[test]
fn mount_and_from_follow_go_parse_query() {
    let start = |q: String, from: Option<&str>| {
        (
            "POST",
            "/v2/team/app/blobs/uploads/".to_owned(),
            q,
            Ok(access(upload(None), "team/app", &[Pull, Push], from)),
        )
    };
    let cases = [
        start(format!("mount={D}&from=library/base"), Some("library/base")),
        start(
            format!("from=library%2Fbase&mount={D}"),
            Some("library/base"),
        ),
        start(format!("mount={D}"), None),
        start(format!("mount={D}&from="), None),
        start("from=other".into(), Some("other")),
        start("fr%6Fm=a".into(), Some("a")),
        // Go skips a pair with a bad escape, and an empty pair.
        start("x=%zz&&from=a".into(), Some("a")),
        start("%zz=1&from=a".into(), Some("a")),
    ];
    for (m, path, query, want) in &cases {
        assert_eq!(
            &classify(&method(m), path, Some(query)),
            want,
            "query={query:?}"
        );
    }
    // The registry asks for pull on `from` on any route with a name.
    check(&[(
        "GET",
        "/v2/a/manifests/latest".into(),
        Some("from=b"),
        Ok(access(manifest("latest"), "a", &[Pull], Some("b"))),
    )]);
}

#[test]
fn bad_from_is_refused() {
    let from_err = |name: &str, problem| Error::From {
        name: name.to_owned(),
        problem,
    };
    let cases: &[(&str, Error)] = &[
        ("mount=x&from=a;b", Error::QuerySemicolon),
        ("x=1;from=a", Error::QuerySemicolon),
        ("from=a&from=b", Error::RepeatedFrom),
        ("from=a&fr%6fm=a", Error::RepeatedFrom),
        ("from=&from=a", Error::RepeatedFrom),
        ("from=%zz", Error::FromEscape),
        ("from=a%2", Error::FromEscape),
        (
            "from=Library",
            from_err("Library", NameError::InvalidComponent("Library".into())),
        ),
        // Go turns `+` into a space.
        (
            "from=a+b",
            from_err("a b", NameError::InvalidComponent("a b".into())),
        ),
        ("from=a%2F", from_err("a/", NameError::EmptyComponent)),
        (
            "from=%FF",
            from_err("\u{fffd}", NameError::InvalidComponent("\u{fffd}".into())),
        ),
        (
            "from=../x",
            from_err("../x", NameError::InvalidComponent("..".into())),
        ),
    ];
    for (query, want) in cases {
        let got = classify(&Method::POST, "/v2/a/blobs/uploads/", Some(query));
        assert_eq!(got.as_ref(), Err(want), "query={query:?}");
    }
}

#[test]
fn names() {
    let long_ok = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    let too_long = format!("{}/{}", "a".repeat(128), "b".repeat(127));
    let invalid = |c: &str| NameError::InvalidComponent(c.to_owned());
    let cases: &[(&str, Result<(), NameError>)] = &[
        ("a", Ok(())),
        ("a__b/c---d/e.f_g/0", Ok(())),
        ("foo.com/bar", Ok(())),
        (&long_ok, Ok(())),
        (&too_long, Err(NameError::TooLong(256))),
        ("", Err(NameError::EmptyComponent)),
        ("a/", Err(NameError::EmptyComponent)),
        ("/a", Err(NameError::EmptyComponent)),
        ("a//b", Err(NameError::EmptyComponent)),
        ("Library/ubuntu", Err(invalid("Library"))),
        ("a-", Err(invalid("a-"))),
        ("-a", Err(invalid("-a"))),
        ("a..b", Err(invalid("a..b"))),
        ("a___b", Err(invalid("a___b"))),
        ("a_-b", Err(invalid("a_-b"))),
        ("a._b", Err(invalid("a._b"))),
        ("localhost:5000/a", Err(invalid("localhost:5000"))),
        ("_catalog", Err(invalid("_catalog"))),
        ("é", Err(invalid("é"))),
    ];
    for (name, want) in cases {
        let path = format!("/v2/{name}/tags/list");
        let got = classify(&Method::GET, &path, None);
        let want = match want {
            Ok(()) => Ok(access(Target::Tags, name, &[Pull], None)),
            Err(problem) => Err(name_err(name, problem.clone())),
        };
        assert_eq!(got, want, "name={name:?}");
    }
}

#[test]
fn references_digests_and_sessions() {
    let tag129 = "a".repeat(129);
    let cases: &[(&str, Error)] = &[
        ("/v2/a/manifests/", Error::Reference("".into())),
        ("/v2/a/manifests/-x", Error::Reference("-x".into())),
        ("/v2/a/manifests/.x", Error::Reference(".x".into())),
        (
            "/v2/a/manifests/sha256:",
            Error::Reference("sha256:".into()),
        ),
        (
            "/v2/a/manifests/SHA256:abc",
            Error::Reference("SHA256:abc".into()),
        ),
        ("/v2/a/manifests/a+b", Error::Reference("a+b".into())),
        ("/v2/a/blobs/latest", Error::Digest("latest".into())),
        ("/v2/a/blobs/sha256", Error::Digest("sha256".into())),
        ("/v2/a/blobs/:abc", Error::Digest(":abc".into())),
        (
            "/v2/a/blobs/sha256::abc",
            Error::Digest("sha256::abc".into()),
        ),
        (
            "/v2/a/blobs/sha256:ab+c",
            Error::Digest("sha256:ab+c".into()),
        ),
        (
            "/v2/a/blobs/sha256-:abc",
            Error::Digest("sha256-:abc".into()),
        ),
        (
            "/v2/a/blobs/sha256..x:abc",
            Error::Digest("sha256..x:abc".into()),
        ),
        (
            "/v2/a/blobs/sha256:abc:d",
            Error::Digest("sha256:abc:d".into()),
        ),
        // No trailing slash: the registry only redirects.
        ("/v2/a/blobs/uploads", Error::Digest("uploads".into())),
        ("/v2/a/referrers/latest", Error::Digest("latest".into())),
        ("/v2/a/referrers/", Error::Digest("".into())),
        ("/v2/a/blobs/uploads/a:b", Error::Session("a:b".into())),
        ("/v2/a/blobs/uploads/a~b", Error::Session("a~b".into())),
    ];
    let mut all = cases.to_vec();
    let path129 = format!("/v2/a/manifests/{tag129}");
    all.push((&path129, Error::Reference(tag129.clone())));
    for (path, want) in &all {
        let got = classify(&Method::GET, path, None);
        assert_eq!(got.as_ref(), Err(want), "path={path:?}");
    }
}

#[test]
fn unknown_paths() {
    let cases = [
        "/v2/a",
        "/v2/a/",
        "/v2/a/b",
        "/v2/a/foo/bar",
        "/v2/tags/list",
        "/v2/a/tags/list/",
        "/v2/a/tags",
        "/v2/_catalog/",
        "/v2/a/manifests/x/",
        "/v2/a/blobs/uploads/u1/",
        "/v2/a/uploads/u1",
    ];
    for path in cases {
        let got = classify(&Method::GET, path, None);
        assert_eq!(
            got,
            Err(Error::UnknownPath(path.to_owned())),
            "path={path:?}"
        );
    }
    for path in ["/v2", "/v3/", "/", "", "/V2/", "v2/a/tags/list"] {
        let got = classify(&Method::GET, path, None);
        assert_eq!(
            got,
            Err(Error::NotRegistry(path.to_owned())),
            "path={path:?}"
        );
    }
    // gorilla/mux routes on the decoded path; no escape is decoded here.
    for path in [
        "/v2/%61/manifests/latest",
        "/v2/a/%6danifests/x",
        "/v2/%5Fcatalog",
        "/v2/a/manifests/%",
    ] {
        let got = classify(&Method::GET, path, None);
        assert_eq!(
            got,
            Err(Error::PercentEscape(path.to_owned())),
            "path={path:?}"
        );
    }
}

#[test]
fn methods_a_route_does_not_serve() {
    let m = format!("/v2/a/manifests/{D}");
    let b = format!("/v2/a/blobs/{D}");
    let r = format!("/v2/a/referrers/{D}");
    let cases: &[(&str, &str, &'static str)] = &[
        ("POST", "/v2/", "/v2/"),
        ("DELETE", "/v2/", "/v2/"),
        ("HEAD", "/v2/_catalog", "/v2/_catalog"),
        ("POST", "/v2/_catalog", "/v2/_catalog"),
        ("DELETE", "/v2/a/tags/list", "tags/list"),
        ("HEAD", "/v2/a/tags/list", "tags/list"),
        ("PUT", "/v2/a/tags/list", "tags/list"),
        ("PATCH", "/v2/a/manifests/latest", "manifests/<reference>"),
        ("POST", &m, "manifests/<reference>"),
        ("OPTIONS", &m, "manifests/<reference>"),
        ("get", &m, "manifests/<reference>"),
        ("PUT", &b, "blobs/<digest>"),
        ("PATCH", &b, "blobs/<digest>"),
        ("POST", &b, "blobs/<digest>"),
        ("GET", "/v2/a/blobs/uploads/", "blobs/uploads/"),
        ("PUT", "/v2/a/blobs/uploads/", "blobs/uploads/"),
        ("PATCH", "/v2/a/blobs/uploads/", "blobs/uploads/"),
        ("DELETE", "/v2/a/blobs/uploads/", "blobs/uploads/"),
        ("POST", "/v2/a/blobs/uploads/u1", "blobs/uploads/<session>"),
        ("HEAD", &r, "referrers/<digest>"),
        ("DELETE", &r, "referrers/<digest>"),
    ];
    for (m, path, route) in cases {
        let got = classify(&method(m), path, None);
        assert_eq!(got, Err(method_err(m, route)), "method={m} path={path:?}");
    }
}

#[test]
fn primary_action_prefers_delete_then_push() {
    let cases: &[(&[Action], Option<Action>)] = &[
        (&[], None),
        (&[Pull], Some(Pull)),
        (&[Pull, Push], Some(Push)),
        (&[Delete], Some(Delete)),
        (&[Pull, Push, Delete], Some(Delete)),
    ];
    for (actions, want) in cases {
        let a = access(Target::Tags, "a", actions, None);
        assert_eq!(a.primary_action(), *want, "actions={actions:?}");
    }
    let names: Vec<String> = [Pull, Push, Delete].iter().map(|a| a.to_string()).collect();
    assert_eq!(names, ["pull", "push", "delete"]);
}

#[test]
fn target_object_is_the_reference_digest_or_session() {
    let cases = [
        (manifest("latest"), Some("latest")),
        (blob(D), Some(D)),
        (Target::Referrers { digest: D.into() }, Some(D)),
        (upload(Some("u1")), Some("u1")),
        (upload(None), None),
        (Target::Tags, None),
        (Target::Base, None),
        (Target::Catalog, None),
    ];
    for (target, want) in cases {
        assert_eq!(target.object(), want, "target={target:?}");
    }
}

#[test]
fn errors_name_the_piece() {
    let cases = [
        (classify(&Method::GET, "/v2/A/tags/list", None), "invalid repository name \"A\": path component \"A\" is not lowercase letters and digits joined by '.', '_', '__' or dashes"),
        (classify(&Method::GET, "/v2/a//tags/list", None), "invalid repository name \"a/\": empty path component"),
        (classify(&Method::DELETE, "/v2/a/tags/list", None), "method DELETE is not allowed on tags/list"),
        (classify(&Method::GET, "/v2/a/blobs/x", None), "invalid digest \"x\""),
        (classify(&Method::GET, "/v2/a/manifests/-", None), "manifest reference \"-\" is neither a tag nor a digest"),
        (classify(&Method::GET, "/v2/a/x", None), "unknown registry path \"/v2/a/x\""),
        (classify(&Method::GET, "/v2/%41", None), "path \"/v2/%41\" has a percent-escape"),
        (classify(&Method::POST, "/v2/a/blobs/uploads/", Some("from=B")), "invalid \"from\" repository name \"B\": path component \"B\" is not lowercase letters and digits joined by '.', '_', '__' or dashes"),
        (classify(&Method::GET, &format!("/v2/{}/tags/list", "a".repeat(256)), None), &format!("invalid repository name \"{}\": 256 characters, more than 255", "a".repeat(256))),
    ];
    for (got, want) in cases {
        let err = got.expect_err("case is invalid");
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn form_bodies_are_flagged() {
    let headers = |values: &[&[u8]]| {
        let mut h = HeaderMap::new();
        for v in values {
            let v = http::HeaderValue::from_bytes(v).expect("test value");
            h.append(http::header::CONTENT_TYPE, v);
        }
        h
    };
    let cases: &[(&str, &[&[u8]], bool)] = &[
        ("POST", &[], false),
        ("POST", &[b"application/octet-stream"], false),
        ("POST", &[b"application/x-www-form-urlencoded"], true),
        (
            "PUT",
            &[b" Application/X-WWW-Form-URLEncoded ; charset=utf-8"],
            true,
        ),
        ("PATCH", &[b"multipart/form-data; boundary=x"], true),
        (
            "POST",
            &[b"application/octet-stream", b"multipart/form-data"],
            true,
        ),
        (
            "POST",
            &["appl\u{130}cation/x-www-form-urlencoded".as_bytes()],
            true,
        ),
        ("POST", &[b"\xff"], true),
        ("GET", &[b"application/x-www-form-urlencoded"], false),
        ("DELETE", &[b"multipart/form-data"], false),
    ];
    for (m, values, want) in cases {
        assert_eq!(
            reads_form_body(&method(m), &headers(values)),
            *want,
            "method={m} values={values:?}"
        );
    }
}
