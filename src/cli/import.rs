//! `import docker-auth FILE`: cesanta/docker_auth's configuration turned into a
//! token-mode proxy.toml and an htpasswd file.

use std::path::Path;

use anyhow::Context as _;

use super::files::write_file;
use super::stdout::outln;
use super::Failure;

/// Runs `import docker-auth`: reads FILE, writes OUT/proxy.toml and OUT/htpasswd,
/// prints the notes (stderr) and the next steps (stdout).
pub(super) fn docker_auth(
    file: &Path,
    out: &Path,
    force: bool,
    service: Option<String>,
) -> Result<(), Failure> {
    use crate::import::docker_auth;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(Failure::Config)?;
    let options = docker_auth::Options { service };
    let import = docker_auth::import(&text, &options)
        .map_err(|e| Failure::Config(anyhow::anyhow!("{}: {e}", file.display())))?;
    let config = out.join("proxy.toml");
    let htpasswd = out.join("htpasswd");
    let mut files = vec![(&config, &import.proxy_toml, false)];
    if let Some(text) = &import.htpasswd {
        files.push((&htpasswd, text, true));
    }
    if !force {
        if let Some((existing, ..)) = files.iter().find(|(p, ..)| p.exists()) {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{} already exists; pass --force to replace it",
                existing.display()
            )));
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))
        .map_err(Failure::Runtime)?;
    for (path, text, secret) in &files {
        write_file(path, text, *secret).map_err(Failure::Runtime)?;
    }
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    let written: Vec<String> = files
        .iter()
        .map(|(p, ..)| p.display().to_string())
        .collect();
    let r = &import.registry;
    outln!(
        "wrote {written}\n\
         next steps:\n\
         1. read the notes{above} (they are also at the top of {config})\n\
         2. registry-gate --config {config} check-config\n\
         3. registry-gate --config {config} acl explain USER REPOSITORY pull  (a few users)\n\
         4. point the registry at the gate: auth.token.realm = https://GATE-HOST:PORT{path}, \
         issuer = {issuer:?}, service = {service:?}, rootcertbundle = {cert}\n\
         5. registry-gate --config {config} serve, then stop docker_auth",
        written = written.join(" and "),
        above = if import.notes.is_empty() {
            " (none)"
        } else {
            " above"
        },
        config = config.display(),
        path = r.path,
        issuer = r.issuer,
        service = r.service,
        cert = r.rootcertbundle,
    )?;
    Ok(())
}
