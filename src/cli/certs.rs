//! `certs generate`: a development CA and server certificate, renewed without
//! replacing the CA that clients trust, and token mode's signing key.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::files::write_file;
use super::stdout::outln;
use super::Failure;
use crate::tls;

/// Sub-directory of `certs generate --out` holding only `ca.crt`: docker, skopeo and
/// podman read a `--cert-dir` as client key pairs (`*.cert` + `*.key`) plus CAs
/// (`*.crt`), and refuse a directory with a `.key` that has no `.cert`.
const TRUST_DIR: &str = "trust";

/// The files of `certs generate --out DIR`.
struct Files {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    trust: PathBuf,
}

impl Files {
    fn in_dir(out: &Path) -> Files {
        Files {
            ca_cert: out.join("ca.crt"),
            ca_key: out.join("ca.key"),
            server_cert: out.join("server.crt"),
            server_key: out.join("server.key"),
            trust: out.join(TRUST_DIR),
        }
    }
}

/// Which of the files exist already.
#[derive(Clone, Copy, Debug, Default)]
struct Existing {
    ca_cert: bool,
    ca_key: bool,
    server: bool,
}

/// What `certs generate` does with a CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Sign the new server certificate with the CA in `ca.crt` and `ca.key`.
    KeepCa,
    /// Make a new CA; `replacing` if a CA file was there (clients must trust the new one).
    NewCa { replacing: bool },
}

/// Why `certs generate` refuses to start: each names a file and the flag to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// A server certificate exists and `--force` was not given.
    ServerExists { keeping_ca: bool },
    /// One of `ca.crt` and `ca.key` exists without the other, and no `--new-ca`.
    HalfCa { cert: bool },
    /// `--new-ca` would replace a CA file, and `--force` was not given.
    CaExists,
}

/// Decides what to do: keep an existing CA unless `--new-ca`; replace an existing
/// file only with `--force`.
fn plan(existing: Existing, force: bool, new_ca: bool) -> Result<Plan, Refusal> {
    let any_ca = existing.ca_cert || existing.ca_key;
    let keep = !new_ca && existing.ca_cert && existing.ca_key;
    if !new_ca && any_ca && !keep {
        return Err(Refusal::HalfCa {
            cert: existing.ca_cert,
        });
    }
    if existing.server && !force {
        return Err(Refusal::ServerExists { keeping_ca: keep });
    }
    if new_ca && any_ca && !force {
        return Err(Refusal::CaExists);
    }
    Ok(if keep {
        Plan::KeepCa
    } else {
        Plan::NewCa { replacing: any_ca }
    })
}

impl Refusal {
    fn message(self, files: &Files) -> String {
        let (cert, key) = (files.ca_cert.display(), files.ca_key.display());
        match self {
            Refusal::ServerExists { keeping_ca: true } => format!(
                "{} already exists; pass --force to issue a new server certificate \
                 (the CA in {cert} is kept, so clients need no change)",
                files.server_cert.display()
            ),
            Refusal::ServerExists { keeping_ca: false } => format!(
                "{} already exists; pass --force to replace it",
                files.server_cert.display()
            ),
            Refusal::HalfCa { cert: true } => format!(
                "{cert} exists but {key} does not: put the CA's key back to issue a \
                 server certificate with it, or pass --new-ca --force to make a new CA \
                 (every client must then trust the new {cert})"
            ),
            Refusal::HalfCa { cert: false } => format!(
                "{key} exists but {cert} does not: put the CA's certificate back to issue \
                 a server certificate with it, or pass --new-ca --force to make a new CA \
                 (every client must then trust the new {cert})"
            ),
            Refusal::CaExists => format!(
                "{cert} already exists; pass --force with --new-ca to replace the CA \
                 (every client must then trust the new {cert})"
            ),
        }
    }
}

/// Runs `certs generate --san ...`: see [`plan`].
pub(super) fn generate(
    sans: &[String],
    out: &Path,
    force: bool,
    new_ca: bool,
) -> Result<(), Failure> {
    let files = Files::in_dir(out);
    let existing = Existing {
        ca_cert: files.ca_cert.exists(),
        ca_key: files.ca_key.exists(),
        server: files.server_cert.exists() || files.server_key.exists(),
    };
    let plan = plan(existing, force, new_ca)
        .map_err(|r| Failure::Runtime(anyhow::anyhow!(r.message(&files))))?;
    let runtime = |e: anyhow::Error| Failure::Runtime(e);
    let (ca_pem, server) = match plan {
        Plan::KeepCa => {
            let ca = tls::Ca::load(&files.ca_cert, &files.ca_key)
                .map_err(|e| runtime(anyhow::anyhow!("{e}; or pass --new-ca --force")))?;
            let pem = std::fs::read_to_string(&files.ca_cert)
                .with_context(|| format!("reading {}", files.ca_cert.display()))
                .map_err(runtime)?;
            let server = ca.issue(sans).map_err(|e| runtime(e.into()))?;
            (pem, server)
        }
        Plan::NewCa { .. } => {
            let generated = tls::generate(sans).map_err(|e| runtime(e.into()))?;
            std::fs::create_dir_all(out)
                .with_context(|| format!("creating {}", out.display()))
                .map_err(runtime)?;
            write_file(&files.ca_cert, &generated.ca_cert, false).map_err(runtime)?;
            write_file(&files.ca_key, &generated.ca_key, true).map_err(runtime)?;
            let server = tls::ServerCert {
                cert: generated.server_cert,
                key: generated.server_key,
                days: u64::from(tls::SERVER_CERT_DAYS),
            };
            (generated.ca_cert, server)
        }
    };
    std::fs::create_dir_all(&files.trust)
        .with_context(|| format!("creating {}", files.trust.display()))
        .map_err(runtime)?;
    write_file(&files.server_cert, &server.cert, false).map_err(runtime)?;
    write_file(&files.server_key, &server.key, true).map_err(runtime)?;
    write_file(&files.trust.join("ca.crt"), &ca_pem, false).map_err(runtime)?;
    report(&files, out, sans, plan, server.days)
}

/// Says what was done, what clients need, and how to renew.
fn report(
    files: &Files,
    out: &Path,
    sans: &[String],
    plan: Plan,
    days: u64,
) -> Result<(), Failure> {
    let (dir, trust, ca) = (
        out.display(),
        files.trust.display(),
        files.ca_cert.display(),
    );
    let names = sans.join(", ");
    match plan {
        Plan::KeepCa => outln!(
            "kept the CA in {ca}; issued a new server.crt valid for {days} days for {names}\n\
             wrote {dir}/server.crt, server.key and {trust}/ca.crt\n\
             clients that trust {ca} need no change; a running gate serves the new \
             certificate once it reloads (SIGHUP, or on its own when it sees the change)"
        )?,
        Plan::NewCa { replacing } => {
            if replacing {
                eprintln!(
                    "warning: replaced the CA in {ca}: every client that trusted the old \
                     CA refuses this gate until it trusts the new {ca}"
                );
            }
            outln!(
                "wrote a new CA ({dir}/ca.crt, ca.key), server.crt and server.key for {names}, \
                 and {trust}/ca.crt\n\
                 clients must trust ca.crt: for docker copy it to \
                 /etc/docker/certs.d/HOST:PORT/ca.crt;\n\
                 for skopeo and podman pass --cert-dir {trust} (a directory with no *.key file in it)"
            )?
        }
    }
    outln!(
        "server.crt is valid for {days} days: before then run this again with --force, \
         which keeps the CA and issues only a new server.crt"
    )
}

/// Runs `certs generate --token`: token mode's ES256 signing key and certificate.
pub(super) fn generate_token_key(out: &Path, force: bool) -> Result<(), Failure> {
    let runtime = |e: anyhow::Error| Failure::Runtime(e);
    let (key, cert) = (out.join("token.key"), out.join("token.crt"));
    if !force {
        if let Some(existing) = [&key, &cert].into_iter().find(|p| p.exists()) {
            return Err(runtime(anyhow::anyhow!(
                "{} already exists; pass --force to replace it",
                existing.display()
            )));
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))
        .map_err(runtime)?;
    let generated = crate::token::keys::generate_es256("registry-gate token signer")
        .map_err(|e| runtime(e.into()))?;
    write_file(&key, &generated.key_pem, true).map_err(runtime)?;
    write_file(&cert, &generated.cert_pem, false).map_err(runtime)?;
    outln!(
        "wrote {} (ES256 signing key) and {}: set [token] key and cert to them, and the \
         registry's auth.token.rootcertbundle to the certificate",
        key.display(),
        cert.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_ca_is_kept_unless_new_ca_and_files_are_replaced_only_with_force() {
        let none = Existing::default();
        let ca = Existing {
            ca_cert: true,
            ca_key: true,
            server: false,
        };
        let all = Existing { server: true, ..ca };
        let half = Existing {
            ca_cert: true,
            ..none
        };
        let server_only = Existing {
            server: true,
            ..none
        };
        let new = |replacing| Ok(Plan::NewCa { replacing });
        #[rustfmt::skip]
        let cases = [
            // (existing, force, new_ca) => plan
            ((none, false, false), new(false)),
            ((none, false, true), new(false)),
            ((ca, false, false), Ok(Plan::KeepCa)),
            ((all, false, false), Err(Refusal::ServerExists { keeping_ca: true })),
            ((all, true, false), Ok(Plan::KeepCa)),
            ((all, false, true), Err(Refusal::ServerExists { keeping_ca: false })),
            ((ca, false, true), Err(Refusal::CaExists)),
            ((all, true, true), new(true)),
            ((half, true, false), Err(Refusal::HalfCa { cert: true })),
            ((Existing { ca_key: true, ..none }, false, false), Err(Refusal::HalfCa { cert: false })),
            ((half, true, true), new(true)),
            ((server_only, false, false), Err(Refusal::ServerExists { keeping_ca: false })),
            ((server_only, true, false), new(false)),
        ];
        for ((existing, force, new_ca), want) in cases {
            assert_eq!(
                plan(existing, force, new_ca),
                want,
                "existing={existing:?} force={force} new_ca={new_ca}"
            );
        }
    }
}
