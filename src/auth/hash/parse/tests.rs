use crate::auth::hash::{Error, PasswordHash};

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
