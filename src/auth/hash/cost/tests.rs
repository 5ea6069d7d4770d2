use crate::auth::hash::tests::{parse, PASSWORD, VECTORS};
use crate::auth::hash::{Cost, Kind, PasswordHash};

#[test]
fn dummy_is_one_cost_10_bcrypt_hash() {
    let dummy = PasswordHash::dummy();
    assert!(std::ptr::eq(dummy, PasswordHash::dummy()));
    let Kind::Bcrypt(s) = &dummy.kind else {
        panic!("dummy is {dummy:?}");
    };
    assert_eq!((&s[..7], s.len()), ("$2b$10$", 60));
    assert_eq!(parse(s).scheme(), "bcrypt");
    assert!(!dummy.verify(b""));
}

#[test]
fn cost_names_scheme_and_work_factor() {
    let cases: &[(&str, Cost, &str)] = &[
        (VECTORS[0].0, Cost::Bcrypt(4), "bcrypt cost 4"),
        (VECTORS[1].0, Cost::Bcrypt(5), "bcrypt cost 5"),
        (VECTORS[3].0, Cost::Fixed("apr1"), "apr1"),
        (
            VECTORS[8].0,
            Cost::ShaCrypt {
                sha512: false,
                rounds: 5000,
            },
            "sha256-crypt rounds 5000",
        ),
        (
            VECTORS[9].0,
            Cost::ShaCrypt {
                sha512: true,
                rounds: 1000,
            },
            "sha512-crypt rounds 1000",
        ),
        (VECTORS[10].0, Cost::Yescrypt("j75".into()), "yescrypt j75"),
        (VECTORS[11].0, Cost::Fixed("plain"), "plain"),
        (
            VECTORS[12].0,
            Cost::Scrypt {
                log_n: 13,
                r: 32,
                p: 1,
            },
            "scrypt N=2^13 r=32 p=1",
        ),
        (
            VECTORS[14].0,
            Cost::Scrypt {
                log_n: 10,
                r: 8,
                p: 2,
            },
            "scrypt N=2^10 r=8 p=2",
        ),
        (
            VECTORS[15].0,
            Cost::GostYescrypt("j75".into()),
            "gost-yescrypt j75",
        ),
    ];
    for (s, cost, shown) in cases {
        let hash = parse(s);
        assert_eq!(&hash.cost(), cost, "{s}");
        assert_eq!(hash.cost().to_string(), *shown, "{s}");
        assert_eq!(cost.scheme(), hash.scheme(), "{s}");
    }
}

#[test]
fn dummy_like_has_the_same_cost_and_matches_no_known_password() {
    assert_eq!(VECTORS.len(), 16);
    // Salts are random: several rounds, so an unlucky encoding would show.
    for &(s, _) in VECTORS.iter().cycle().take(VECTORS.len() * 8) {
        let model = parse(s);
        let dummy = model.dummy_like();
        assert_eq!(dummy.cost(), model.cost(), "{s}");
        assert!(
            !dummy.verify(PASSWORD.as_bytes()),
            "{s}: the model's password"
        );
        assert!(!dummy.verify(b""), "{s}");
        assert_ne!(
            dummy.cost(),
            PasswordHash::dummy().cost(),
            "{s}: not the fixed fallback"
        );
        // The libraries must do the whole computation: a hash they cannot decode
        // fails fast, which is the timing difference the dummy is there to hide.
        match &dummy.kind {
            Kind::Bcrypt(h) => assert_eq!(bcrypt::verify("x", h).ok(), Some(false), "{h}"),
            Kind::ShaCrypt { mcf, .. } => {
                use sha_crypt::PasswordVerifier as _;
                let r = sha_crypt::ShaCrypt::default().verify_password(b"x", &**mcf);
                assert_eq!(
                    r,
                    Err(sha_crypt::password_hash::Error::PasswordInvalid),
                    "{mcf}"
                );
            }
            Kind::Yescrypt(mcf) => {
                use yescrypt::PasswordVerifier as _;
                let r = yescrypt::Yescrypt::default().verify_password(b"x", &**mcf);
                assert_eq!(
                    r,
                    Err(yescrypt::password_hash::Error::PasswordInvalid),
                    "{mcf}"
                );
            }
            Kind::Md5Crypt { salt, .. } => assert_eq!(salt.len(), 8, "{s}"),
            // Our own code, which always computes: the dummy must be a hash that parses
            // back to itself, with the model's salt length and a fresh salt.
            Kind::Scrypt(hash) => {
                let Kind::Scrypt(model) = &model.kind else {
                    panic!("{s}");
                };
                assert_eq!(parse(&hash.to_mcf()).cost(), dummy.cost(), "{s}");
                assert_eq!(hash.salt_len(), model.salt_len(), "{s}");
                assert_ne!(hash.to_mcf(), model.to_mcf(), "{s}");
            }
            Kind::GostYescrypt(hash) => {
                let Kind::GostYescrypt(model) = &model.kind else {
                    panic!("{s}");
                };
                assert_eq!(parse(&hash.to_mcf()).cost(), dummy.cost(), "{s}");
                assert_eq!(hash.salt_len(), model.salt_len(), "{s}");
                assert_ne!(hash.to_mcf(), model.to_mcf(), "{s}");
            }
            _ => {}
        }
    }
    let a = parse(VECTORS[0].0).dummy_like();
    let b = parse(VECTORS[0].0).dummy_like();
    let (Kind::Bcrypt(a), Kind::Bcrypt(b)) = (&a.kind, &b.kind) else {
        panic!("bcrypt dummies");
    };
    assert_ne!(a, b, "a fresh salt each time");
}
