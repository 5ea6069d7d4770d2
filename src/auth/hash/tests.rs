//! Tests for `hash`: hashes made by the real tools at test time, fixed vectors, malformed
//! input and a deterministic fuzz loop.

use std::process::Command;

use super::{Cost, Error, Kind, PasswordHash, MAX_PASSWORD_LEN};

const PASSWORD: &str = "pä:ss wörd";

/// Runs a hashing tool. A missing tool fails the test, naming the Debian package to install.
pub(crate) fn tool(package: &str, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): run `apt-get install -y {package}`")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed (is the Debian package {package} installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("hashing tools print ASCII")
}

fn parse(s: &str) -> PasswordHash {
    PasswordHash::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

const SSHA_SCRIPT: &str = "import sys; from passlib.hash import ldap_salted_sha1 as h; \
                           print(h.using(salt_size=int(sys.argv[1])).hash(sys.argv[2]))";

/// libxcrypt's `crypt(3)` (what nginx calls), through Python's ctypes, with a setting of our
/// choosing: parameters and salt lengths that `mkpasswd` does not make. passlib (1.7.4) knows
/// neither `$7$` (its `scrypt` is its own `$scrypt$` format) nor `$gy$`.
const CRYPT_SCRIPT: &str = "import ctypes, sys; c = ctypes.CDLL('libcrypt.so.1'); \
                            c.crypt.restype = ctypes.c_char_p; \
                            print(c.crypt(sys.argv[2].encode(), sys.argv[1].encode()).decode())";

#[test]
fn hashes_made_by_real_tools_verify() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str], &str, &str)] = &[
        // (package, program, arguments before the password, expected prefix, scheme)
        ("apache2-utils", "htpasswd", &["-nbB", "-C", "5", "u"], "u:$2y$05$", "bcrypt"),
        ("apache2-utils", "htpasswd", &["-nbm", "u"], "u:$apr1$", "apr1"),
        ("apache2-utils", "htpasswd", &["-nbs", "u"], "u:{SHA}", "sha1"),
        ("apache2-utils", "htpasswd", &["-nbd", "u"], "u:", "des-crypt"),
        ("apache2-utils", "htpasswd", &["-nb", "-2", "u"], "u:$5$", "sha256-crypt"),
        ("apache2-utils", "htpasswd", &["-nb", "-5", "-r", "12345", "u"], "u:$6$rounds=12345$", "sha512-crypt"),
        ("openssl", "openssl", &["passwd", "-1"], "$1$", "md5-crypt"),
        ("openssl", "openssl", &["passwd", "-apr1"], "$apr1$", "apr1"),
        ("openssl", "openssl", &["passwd", "-5"], "$5$", "sha256-crypt"),
        ("openssl", "openssl", &["passwd", "-6"], "$6$", "sha512-crypt"),
        ("whois", "mkpasswd", &["-m", "yescrypt"], "$y$j9T$", "yescrypt"),
        ("whois", "mkpasswd", &["-m", "yescrypt", "-R", "1"], "$y$j75$", "yescrypt"),
        ("whois", "mkpasswd", &["-m", "des"], "", "des-crypt"),
        ("whois", "mkpasswd", &["-m", "md5crypt"], "$1$", "md5-crypt"),
        ("whois", "mkpasswd", &["-m", "sha-256", "-R", "1000"], "$5$rounds=1000$", "sha256-crypt"),
        ("whois", "mkpasswd", &["-m", "sha-512", "-R", "5000"], "$6$", "sha512-crypt"),
        ("whois", "mkpasswd", &["-m", "sha-512", "-R", "10000"], "$6$rounds=10000$", "sha512-crypt"),
        ("whois", "mkpasswd", &["-m", "bcrypt", "-R", "5"], "$2b$05$", "bcrypt"),
        ("whois", "mkpasswd", &["-m", "bcrypt-a", "-R", "5"], "$2a$05$", "bcrypt"),
        ("whois", "mkpasswd", &["-m", "scrypt"], "$7$CU..../....", "scrypt"),
        ("whois", "mkpasswd", &["-m", "scrypt", "-R", "6"], "$7$BU..../....", "scrypt"),
        ("whois", "mkpasswd", &["-m", "gost-yescrypt"], "$gy$j9T$", "gost-yescrypt"),
        ("whois", "mkpasswd", &["-m", "gost-yescrypt", "-R", "1"], "$gy$j75$", "gost-yescrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$7$86..../....x"], "$7$86..../....x$", "scrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$7$86....0....s"], "$7$86....0....s$", "scrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, LONG_SCRYPT_SETTING], LONG_SCRYPT_SETTING, "scrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$y$j75/.$salt"], "$y$j75/.$salt$", "yescrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$y$j750.0$salt"], "$y$j750.0$salt$", "yescrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$gy$j75$/."], "$gy$j75$/.$", "gost-yescrypt"),
        ("libcrypt1", "/usr/bin/python3", &["-c", CRYPT_SCRIPT, "$gy$j75/0$salt"], "$gy$j75/0$salt$", "gost-yescrypt"),
        ("python3-passlib", "/usr/bin/python3", &["-c", SSHA_SCRIPT, "4"], "{SSHA}", "ssha"),
        ("python3-passlib", "/usr/bin/python3", &["-c", SSHA_SCRIPT, "16"], "{SSHA}", "ssha"),
    ];
    for &(package, program, args, prefix, scheme) in cases {
        for password in [PASSWORD, "s3cret", "a:b"] {
            let args = [args, &[password]].concat();
            let out = tool(package, program, &args);
            let line = out.trim_end();
            assert!(
                line.starts_with(prefix),
                "{program} {args:?} printed {line:?}"
            );
            let field = line.strip_prefix("u:").unwrap_or(line);
            let hash = parse(field);
            assert_eq!(hash.scheme(), scheme, "{program} {args:?}");
            assert!(hash.verify(password.as_bytes()), "{program} {args:?}");
            let wrong = format!("X{password}");
            assert!(
                !hash.verify(wrong.as_bytes()),
                "{program} {args:?}: {wrong:?}"
            );
            assert!(!hash.verify(b""), "{program} {args:?}: empty password");
        }
    }
}

/// An scrypt setting with the longest salt we accept, 86 characters.
const LONG_SCRYPT_SETTING: &str = "$7$86..../....\
    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Made once with the tools (see `hashes_made_by_real_tools_verify`), for `PASSWORD`.
const VECTORS: &[(&str, &str)] = &[
    ("$2y$04$Z/MzJisTm9N/z6san7We7uVYf/7rTM1HdgDR1UKHhet6ynJP1XnFy", "bcrypt"),
    ("$2a$05$mkO9qSVuB4nKP0KVeuxIpu2ZOs4wO/V6kSdD8c4OmKVNXMwDzQyo.", "bcrypt"),
    ("$2b$05$DAvr9EHpnA0T6onsrszHL.GDljJPfowvoyhHn61rd/JXUdrz2e1s6", "bcrypt"),
    ("$apr1$f2gG.5yc$2NAIKfdE0GbT49XV6TqZu/", "apr1"),
    ("$1$ZUfqeRD7$rn9AldxozIrevEli7eWNf0", "md5-crypt"),
    ("{SHA}jae4SHgds0RkoNTb3xXBCDPVeis=", "sha1"),
    ("{SSHA}AMo78BTTamDLrXQpAzgUReUrPQbg/J/z", "ssha"),
    ("gb1h9SPieDWCw", "des-crypt"),
    ("$5$Z0/c3v9YitinP1Gu$P/dvpmyWnn7k1jxP5SvzPx4zf6x05IFsPGxQapfdEI7", "sha256-crypt"),
    ("$6$rounds=1000$fC8yz37PZL7B7mkc$1ZzLmMfTtjwVn2tiHoUp5BlKyqLirth93BxYNNfuKH3yW4ZGGmqruXZkZz48smIUBttLELbgMob1eCVytkOjx.", "sha512-crypt"),
    ("$y$j75$za2o7YwBC5qqRr/gIYm0I/$iZiWMN7dJIixwxGcfo8WKg/EhgrGM7qPi9yAbx62nB3", "yescrypt"),
    ("{PLAIN}pä:ss wörd", "plain"),
    // mkpasswd -m scrypt -R 6; then CRYPT_SCRIPT with N = 2^10, r = 8 and p = 1 or 2.
    ("$7$BU..../....zupdayx81dSG4Q0HKs3aQ0$0q9qP7UILfLYCM02/xjrhSNBTIMwezZZs/zrRVG5xaB", "scrypt"),
    ("$7$86..../....Vh0.sT9xa1/eE$01HJLuWx4yTkrhFFhHNwXHkVSG3OhLXeiuhiIXJWMM1", "scrypt"),
    ("$7$86....0....s$3teMedIPzM4JIkTelkNyfinMeXRbhp3nN22Oev2Zx0B", "scrypt"),
    // mkpasswd -m gost-yescrypt -R 1.
    ("$gy$j75$p0d5R1ZLIubpRjME0S4EI/$ixJ3GItZMqH0ra3.szDvqsvhPDGFuX8o2JSoVfWUUn7", "gost-yescrypt"),
];

#[test]
fn fixed_vectors_verify() {
    for &(s, scheme) in VECTORS {
        let hash = parse(s);
        assert_eq!(hash.scheme(), scheme, "{s}");
        assert!(hash.verify(PASSWORD.as_bytes()), "{s}");
        assert!(!hash.verify("Pä:ss wörd".as_bytes()), "{s}");
    }
}

#[test]
fn malformed_and_unsupported_hashes_are_rejected() {
    let m = |scheme, reason| Error::Malformed { scheme, reason };
    let u = |scheme: &str| Error::UnsupportedScheme {
        scheme: scheme.into(),
    };
    let b64 = "Z/MzJisTm9N/z6san7We7uVYf/7rTM1HdgDR1UKHhet6ynJP1XnFy";
    let digest43 = "P/dvpmyWnn7k1jxP5SvzPx4zf6x05IFsPGxQapfdEI7";
    let cases: &[(String, Error)] = &[
        ("".into(), Error::Empty),
        ("$2y$05$abc".into(), m("bcrypt", "expected 60 characters")),
        (
            format!("$2y$05${}ä", &b64[2..]),
            m("bcrypt", "expected 60 characters"),
        ),
        (
            format!("$2y$32${b64}"),
            m("bcrypt", "cost must be two digits from 04 to 31"),
        ),
        (
            format!("$2y$+5${b64}"),
            m("bcrypt", "cost must be two digits from 04 to 31"),
        ),
        (
            format!("$2y$05x{b64}"),
            m("bcrypt", "cost must be two digits from 04 to 31"),
        ),
        (
            format!("$2y$05$!{}", &b64[1..]),
            m("bcrypt", "invalid base64 in salt or digest"),
        ),
        // Stray bits in the salt's last character.
        (
            format!("$2y$05${}v{}", &b64[..21], &b64[22..]),
            m("bcrypt", "invalid base64 in salt or digest"),
        ),
        (format!("$2x$05${b64}"), u("$2x$")),
        ("$apr1$".into(), m("apr1", "missing '$' after the salt")),
        ("$apr1$x".into(), m("apr1", "missing '$' after the salt")),
        (
            "$apr1$saltsalt$".into(),
            m("apr1", "expected a 22-character digest"),
        ),
        (
            "$apr1$saltsalt$2NAIKfdE0GbT49XV6TqZu!".into(),
            m("apr1", "expected a 22-character digest"),
        ),
        (
            "$apr1$saltsalts$2NAIKfdE0GbT49XV6TqZu/".into(),
            m("apr1", "salt longer than 8 characters"),
        ),
        (
            "$apr1$f2gG.5yc$2NAIKfdE0GbT49XV6TqZuz".into(),
            m("apr1", "non-canonical digest encoding"),
        ),
        ("$1$".into(), m("md5-crypt", "missing '$' after the salt")),
        ("{SHA}".into(), m("sha1", "expected a 20-byte SHA-1 digest")),
        ("{SHA}not base64!".into(), m("sha1", "invalid base64")),
        (
            "{SHA}jae4SHgds0RkoNTb3xXBCDPVei==".into(),
            m("sha1", "expected a 20-byte SHA-1 digest"),
        ),
        (
            "{SSHA}AMo78BTTamDLrXQp".into(),
            m("ssha", "shorter than a 20-byte SHA-1 digest"),
        ),
        ("{SSHA}%%%%".into(), m("ssha", "invalid base64")),
        (
            "$5$rounds=abc$".into(),
            m("sha256-crypt", "rounds must be from 1000 to 999999999"),
        ),
        (
            "$5$rounds=999$s$".into(),
            m("sha256-crypt", "rounds must be from 1000 to 999999999"),
        ),
        (
            "$5$rounds=05000$s$".into(),
            m("sha256-crypt", "rounds must be from 1000 to 999999999"),
        ),
        (
            "$5$rounds=5000".into(),
            m("sha256-crypt", "missing '$' after rounds"),
        ),
        (
            "$5$salt".into(),
            m("sha256-crypt", "missing '$' after the salt"),
        ),
        (
            format!("$5$${digest43}"),
            m(
                "sha256-crypt",
                "salt must be 1 to 16 characters of [./0-9A-Za-z]",
            ),
        ),
        (
            format!("$5$saltsaltsaltsalts${digest43}"),
            m(
                "sha256-crypt",
                "salt must be 1 to 16 characters of [./0-9A-Za-z]",
            ),
        ),
        (
            format!("$5$salt${digest43}x"),
            m("sha256-crypt", "expected a 43-character digest"),
        ),
        (
            format!("$5$salt${}z", &digest43[..42]),
            m("sha256-crypt", "non-canonical digest encoding"),
        ),
        (
            format!("$6$salt${digest43}"),
            m("sha512-crypt", "expected an 86-character digest"),
        ),
        (
            "$y$j9T$salt".into(),
            m("yescrypt", "expected parameters, salt and digest"),
        ),
        (
            format!("$y$!!!$salt${digest43}"),
            m("yescrypt", "invalid parameters"),
        ),
        // N = 2^19, r = 32: 2 GiB.
        (
            format!("$y$jGT$salt${digest43}"),
            m("yescrypt", "parameters ask for more than 1 GiB"),
        ),
        // t = 4657: a login would run 4658 times as long as at `$y$j75$`.
        (
            format!("$y$j75/t..$salt${digest43}"),
            m(
                "yescrypt",
                "p and t ask for more than 1 GiB of work (mkpasswd leaves both at 1 and 0)",
            ),
        ),
        // Classic flavor, N = 2^20, r = 8, p = 2: 1 GiB of memory, filled twice.
        (
            format!("$y$.H5..$salt${digest43}"),
            m(
                "yescrypt",
                "p and t ask for more than 1 GiB of work (mkpasswd leaves both at 1 and 0)",
            ),
        ),
        (format!("$y$j9T$${digest43}"), m("yescrypt", "invalid salt")),
        (
            "$y$j9T$salt$short".into(),
            m("yescrypt", "expected a 43-character digest"),
        ),
        (
            "abcdefghijklm".into(),
            m("des-crypt", "non-canonical digest encoding"),
        ),
        ("{SMD5}abcdef".into(), u("{SMD5}")),
        ("{sha}jae4SHgds0RkoNTb3xXBCDPVeis=".into(), u("{sha}")),
        (
            "$7$".into(),
            m("scrypt", "expected parameters, salt and digest"),
        ),
        (
            format!("$7$CU..../...${digest43}"),
            m("scrypt", "expected 11 characters of parameters"),
        ),
        (
            format!("$7$CU..!./....salt${digest43}"),
            m("scrypt", "invalid parameters"),
        ),
        (
            format!("$7$.U..../....salt${digest43}"),
            m("scrypt", "N must be at least 2, r and p at least 1"),
        ),
        (
            format!("$7$C...../....salt${digest43}"),
            m("scrypt", "N must be at least 2, r and p at least 1"),
        ),
        (
            format!("$7$CU.........salt${digest43}"),
            m("scrypt", "N must be at least 2, r and p at least 1"),
        ),
        // N = 2^19, r = 32: 2 GiB; N = 2^18, r = 32, p = 2: two passes over 1 GiB.
        (
            format!("$7$HU..../....salt${digest43}"),
            m("scrypt", "parameters ask for more than 1 GiB"),
        ),
        (
            format!("$7$GU....0....salt${digest43}"),
            m("scrypt", "parameters ask for more than 1 GiB"),
        ),
        // r = p = 2^30 - 1.
        (
            format!("$7$/zzzzzzzzzzsalt${digest43}"),
            m("scrypt", "parameters ask for more than 1 GiB"),
        ),
        (
            format!("$7$CU..../....${digest43}"),
            m("scrypt", "salt must be 1 to 86 characters of [./0-9A-Za-z]"),
        ),
        (
            format!("$7$CU..../....sa$lt${digest43}"),
            m("scrypt", "salt must be 1 to 86 characters of [./0-9A-Za-z]"),
        ),
        (
            format!("$7$CU..../....{}${digest43}", "a".repeat(87)),
            m("scrypt", "salt must be 1 to 86 characters of [./0-9A-Za-z]"),
        ),
        (
            "$7$CU..../....salt$short".into(),
            m("scrypt", "expected a 43-character digest"),
        ),
        // 43 characters, but the last one carries bits beyond the 32 bytes.
        (
            format!("$7$CU..../....salt${}E", &digest43[..42]),
            m("scrypt", "expected a 43-character digest"),
        ),
        (
            "$gy$j9T$salt".into(),
            m("gost-yescrypt", "expected parameters, salt and digest"),
        ),
        (
            format!("$gy$j9T$salt${digest43}$"),
            m("gost-yescrypt", "expected parameters, salt and digest"),
        ),
        (
            format!("$gy$!!!$salt${digest43}"),
            m("gost-yescrypt", "invalid parameters"),
        ),
        (
            format!("$gy$jGT$salt${digest43}"),
            m("gost-yescrypt", "parameters ask for more than 1 GiB"),
        ),
        (
            format!("$gy$jAT/t..$salt${digest43}"),
            m(
                "gost-yescrypt",
                "p and t ask for more than 1 GiB of work (mkpasswd leaves both at 1 and 0)",
            ),
        ),
        (
            format!("$gy$j9T$${digest43}"),
            m("gost-yescrypt", "invalid salt"),
        ),
        // A lone character, stray bits, more than 64 bytes.
        (
            format!("$gy$j9T$salts${digest43}"),
            m("gost-yescrypt", "invalid salt"),
        ),
        (
            format!("$gy$j9T$sE${digest43}"),
            m("gost-yescrypt", "invalid salt"),
        ),
        (
            format!("$gy$j9T${}${digest43}", "a".repeat(88)),
            m("gost-yescrypt", "invalid salt"),
        ),
        (
            format!("$gy$j9T$salt${digest43}x"),
            m("gost-yescrypt", "expected a 43-character digest"),
        ),
        (
            format!("$gy$j9T$salt${}E", &digest43[..42]),
            m("gost-yescrypt", "expected a 43-character digest"),
        ),
        ("$gx$j9T$salt$hash".into(), u("$gx$")),
        ("$md5,rounds=1000$abc$def".into(), u("$md5,rounds=1000$")),
        ("$3$$8846f7eaee8fb117ad06bdd830b7586c".into(), u("$3$")),
        ("_J9..CCCCXBrJUJV154M".into(), u("_")),
        ("secret".into(), Error::NoScheme),
        ("$$".into(), Error::NoScheme),
        ("{}".into(), Error::NoScheme),
        (format!("{{{}}}", "A".repeat(100)), Error::NoScheme),
        (format!("${}$", "a".repeat(100)), Error::NoScheme),
        ("x".repeat(100_000), Error::NoScheme),
    ];
    for (input, expected) in cases {
        let short: String = input.chars().take(40).collect();
        assert_eq!(
            PasswordHash::parse(input).err().as_ref(),
            Some(expected),
            "input={short:?}"
        );
    }
}

#[test]
fn errors_display_the_scheme_but_not_the_hash() {
    let cases = [
        ("", "empty hash"),
        ("{SMD5}c2VjcmV0", "unsupported hash scheme \"{SMD5}\""),
        ("$2y$05$abc", "malformed bcrypt hash: expected 60 characters"),
        ("$5$rounds=abc$", "malformed sha256-crypt hash: rounds must be from 1000 to 999999999"),
        ("$7$CU..../....salt$short", "malformed scrypt hash: expected a 43-character digest"),
        ("$gy$jGT$salt$x", "malformed gost-yescrypt hash: parameters ask for more than 1 GiB"),
        (
            "hunter2",
            "unsupported hash scheme: no recognised prefix (a plaintext password needs \"{PLAIN}\")",
        ),
    ];
    for (input, expected) in cases {
        let error = PasswordHash::parse(input).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected), "input={input:?}");
    }
}

#[test]
fn bcrypt_counts_only_the_first_72_bytes() {
    let password = "0123456789".repeat(8);
    let out = tool(
        "apache2-utils",
        "htpasswd",
        &["-nbB", "-C", "4", "u", &password],
    );
    let hash = parse(out.trim_end().trim_start_matches("u:"));
    let cases = [
        (password.clone(), true),
        (format!("{}different tail", &password[..72]), true),
        (password[..72].to_owned(), true),
        (password[..71].to_owned(), false),
        (format!("X{}", &password[1..]), false),
    ];
    for (attempt, expected) in cases {
        assert_eq!(hash.verify(attempt.as_bytes()), expected, "{attempt:?}");
    }
}

#[test]
fn des_crypt_counts_only_the_first_8_bytes() {
    let out = tool("whois", "mkpasswd", &["-m", "des", "password123"]);
    let hash = parse(out.trim_end());
    let cases = [
        ("password123", true),
        ("password", true),
        ("passwordXYZ", true),
        ("passwor", false),
        ("Password123", false),
    ];
    for (attempt, expected) in cases {
        assert_eq!(hash.verify(attempt.as_bytes()), expected, "{attempt:?}");
    }
}

#[test]
fn passwords_over_the_limit_are_refused() {
    let long = "p".repeat(MAX_PASSWORD_LEN);
    let hash = parse(&format!("{{PLAIN}}{long}"));
    assert!(hash.verify(long.as_bytes()));
    let longer = format!("{long}p");
    assert!(!parse(&format!("{{PLAIN}}{longer}")).verify(longer.as_bytes()));
}

#[test]
fn plain_compares_the_whole_password() {
    let cases = [
        ("{PLAIN}", "", true),
        ("{PLAIN}", " ", false),
        ("{PLAIN}a:b", "a:b", true),
        ("{PLAIN}a:b", "a:", false),
        ("{PLAIN}Secret", "secret", false),
    ];
    for (hash, attempt, expected) in cases {
        assert_eq!(
            parse(hash).verify(attempt.as_bytes()),
            expected,
            "{hash} {attempt:?}"
        );
    }
}

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

#[test]
fn debug_shows_only_the_scheme() {
    let hash = parse("{SHA}jae4SHgds0RkoNTb3xXBCDPVeis=");
    assert_eq!(format!("{hash:?}"), "PasswordHash { scheme: \"sha1\", .. }");
}

/// Whether verifying takes milliseconds: mutations can raise costs to hours.
fn cheap(hash: &PasswordHash) -> bool {
    match &hash.kind {
        Kind::Bcrypt(s) => &s[4..6] <= "06",
        Kind::ShaCrypt { mcf, .. } => mcf[3..]
            .strip_prefix("rounds=")
            .and_then(|r| r.split('$').next()?.parse::<u32>().ok())
            .is_none_or(|rounds| rounds <= 20_000),
        Kind::Yescrypt(mcf) => mcf
            .split('$')
            .nth(2)
            .and_then(|p| p.parse::<yescrypt::Params>().ok())
            .is_some_and(|p| p.n() * u64::from(p.r()) <= 1 << 16),
        Kind::Scrypt(hash) => {
            let (log_n, r, p) = hash.params();
            (1u64 << log_n) * u64::from(r) * u64::from(p) <= 1 << 14
        }
        Kind::GostYescrypt(hash) => hash
            .params_text()
            .parse::<yescrypt::Params>()
            .is_ok_and(|p| p.n() * u64::from(p.r()) <= 1 << 16),
        _ => true,
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

const PREFIXES: &[&str] = &[
    "",
    "$",
    "{",
    "_",
    "$2y$04$",
    "$2b$31$",
    "$apr1$",
    "$1$",
    "$5$",
    "$5$rounds=1000$",
    "$6$",
    "$y$",
    "$y$j75$",
    "$7$",
    "$7$86..../....",
    "$gy$",
    "$gy$j75$",
    "{SHA}",
    "{SSHA}",
    "{PLAIN}",
];

#[test]
fn random_and_mutated_inputs_never_panic() {
    let chars: Vec<char> = "./09AZaz$:{}=+!rounds ä€\u{0}\u{10FFFF}".chars().collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut rejected) = (0, 0);
    let mut verified = 0;
    for _ in 0..4000 {
        let input = if rng.below(4) == 0 {
            // A scheme prefix and random characters.
            let mut input = PREFIXES[rng.below(PREFIXES.len())].to_owned();
            input.extend((0..rng.below(70)).map(|_| chars[rng.below(chars.len())]));
            input
        } else {
            // A valid hash with up to three random edits.
            let mut input: Vec<char> = VECTORS[rng.below(VECTORS.len())].0.chars().collect();
            for _ in 0..=rng.below(3) {
                let at = rng.below(input.len() + 1);
                let c = chars[rng.below(chars.len())];
                match rng.below(4) {
                    0 => input.truncate(at),
                    1 => input.insert(at, c),
                    2 if at < input.len() => input[at] = c,
                    _ if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.push(c),
                }
            }
            input.into_iter().collect()
        };
        match PasswordHash::parse(&input) {
            Ok(hash) => {
                accepted += 1;
                if cheap(&hash) {
                    verified += 1;
                    hash.verify(PASSWORD.as_bytes());
                    hash.verify(input.as_bytes());
                }
            }
            Err(e) => {
                rejected += 1;
                let message = e.to_string();
                assert!(message.len() < 120, "{message}");
                let tail: String = input.chars().skip(8).collect();
                assert!(tail.len() < 8 || !message.contains(&tail), "{message}");
            }
        }
    }
    assert!(
        verified > 200 && rejected > 2000,
        "verified {verified} of {accepted} accepted, rejected {rejected}"
    );
}

#[test]
fn scrypt_and_gost_yescrypt_print_back_as_parsed() {
    let found: Vec<_> = VECTORS
        .iter()
        .filter_map(|&(s, _)| match &parse(s).kind {
            Kind::Scrypt(hash) => Some((s, hash.to_mcf())),
            Kind::GostYescrypt(hash) => Some((s, hash.to_mcf())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 4);
    for (s, printed) in found {
        assert_eq!(printed, s);
    }
}

/// gost-yescrypt is yescrypt's digest through two HMACs: the same parameters, salt and
/// digest under `$gy$` are not the `$y$` hash, and the GOST digest is not valid as `$y$`.
#[test]
fn gost_yescrypt_is_not_yescrypt_relabelled() {
    let (y, gy) = (VECTORS[10].0, VECTORS[15].0);
    let cases = [
        (y.replacen("$y$", "$gy$", 1), "a $y$ hash relabelled"),
        (gy.replacen("$gy$", "$y$", 1), "a $gy$ hash relabelled"),
    ];
    for (hash, what) in cases {
        assert!(!parse(&hash).verify(PASSWORD.as_bytes()), "{what}");
    }
    assert!(parse(y).verify(PASSWORD.as_bytes()));
    assert!(parse(gy).verify(PASSWORD.as_bytes()));
}

/// The highest costs `mkpasswd` offers (`-R 11`) are the bound, and parse; one step more does not.
#[test]
fn scrypt_costs_are_bounded_at_mkpasswd_s_highest() {
    let digest = "0q9qP7UILfLYCM02/xjrhSNBTIMwezZZs/zrRVG5xaB";
    let cases = [
        ("$7$GU..../....", true),
        ("$7$HU..../....", false),
        ("$7$GU....0....", false),
        ("$7$Gk..../....", false),
        ("$7$H6....6....", false),
        ("$7$D6....6....", true),
    ];
    for (setting, accepted) in cases {
        let hash = format!("{setting}salt${digest}");
        assert_eq!(PasswordHash::parse(&hash).is_ok(), accepted, "{hash}");
    }
}
