//! Tests for `hash`: hashes made by the real tools at test time, fixed vectors and a
//! deterministic fuzz loop. Malformed input is tested in `parse/tests.rs`, costs and dummies
//! in `cost/tests.rs`, with the helpers and vectors here.

use std::process::Command;

use super::{Kind, PasswordHash, MAX_PASSWORD_LEN};

pub(super) const PASSWORD: &str = "pä:ss wörd";

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

pub(super) fn parse(s: &str) -> PasswordHash {
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
pub(super) const VECTORS: &[(&str, &str)] = &[
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
