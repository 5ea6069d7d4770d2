//! A real OpenLDAP server (Debian 12's `slapd` 2.5) with a small seeded directory, for tests of
//! LDAP authentication against the real thing.
//!
//! [`Slapd::start`] runs slapd in the foreground (`-d stats`) from a temp dir holding its
//! `slapd.conf`, an mdb database, a TLS certificate from `registry-gate certs generate` and its
//! log. It listens on two loopback ports: `ldap://` (StartTLS capable) and `ldaps://`. The
//! directory is [`SEED`] (loaded with `slapadd` before the first start) plus [`SEED_GROUPS`]
//! (added with `ldapadd` once it serves); see "memberOf" below.
//!
//! | DN | password | notes |
//! |---|---|---|
//! | [`READER_DN`] | [`READER_PASSWORD`] | the gate's search account |
//! | [`ADMIN_DN`] | [`ADMIN_PASSWORD`] | `rootdn`: the harness's own probes and writes |
//! | `uid=alice,`[`PEOPLE`] | `alice-pw` | in `pushers` and `devs` |
//! | `uid=bob,`[`PEOPLE`] | `bob-pw` | in no group |
//! | `uid=carol,`[`PEOPLE`] | `carol-pw` | in `devs` |
//! | `uid=mallory,`[`PEOPLE`] | `mallory-pw` | in `devs`; for deny rules a spelling must not escape |
//! | `uid=dana,`[`PEOPLE`] | `dana-pw` | two `uid` values (`dana`, `dana.alt`): no one account name |
//! | `uid=twin,`[`PEOPLE`] | `twin-pw` | one of two `uid=twin` entries |
//! | `uid=twin,ou=contractors,`[`PEOPLE`] | `twin-pw` | the other one |
//!
//! Both twins have the same password, so that a client which binds as whichever entry a search
//! returns first would succeed: a test of "ambiguous user is refused" then fails for it.
//!
//! Groups ([`GROUPS`], all `groupOfNames`): `cn=pushers` (alice), `cn=devs` (alice, carol,
//! mallory) and
//! `cn=admins`, whose only member is the group `cn=devs`.
//!
//! ACLs: `userPassword` is readable by nobody (`by anonymous auth`, `by self =xw`: `write` would
//! let a user read her own); everything
//! else is readable by the reader and by any bound user, and invisible to anonymous clients (a
//! search gets `noSuchObject`, 32), so a client must bind as the reader to search.
//!
//! Facts about slapd 2.5 this harness relies on, checked by experiment:
//!
//! - memberOf: the `memberof` overlay (`/usr/lib/ldap/memberof.so`) maintains `memberOf` only
//!   on live adds and modifies, not for entries loaded by `slapadd`. So the groups are added with
//!   `ldapadd` after the first start, and slapd itself computes `memberOf` (alice: pushers and
//!   devs; carol: devs; the group `cn=devs`: admins). The overlay does not follow nesting:
//!   alice gets no `memberOf: cn=admins`.
//! - A simple bind is logged as `conn=C op=O BIND dn="<dn>" method=128`, then on success
//!   `... BIND dn="<normalised dn>" mech=SIMPLE bind_ssf=0 ssf=0` and `RESULT tag=97 err=0`;
//!   on a wrong password `RESULT tag=97 err=49`. Lines of one connection may interleave with
//!   others', and `conn` numbers restart at 1000 with every start. See [`Slapd::count_binds`].
//! - slapd cannot be told port 0, so [`Slapd::start`] picks free ports and retries if one is
//!   taken (slapd logs `bind(7) failed errno=98 (Address already in use)` and exits 1).
//! - libldap (the `ldap-utils` commands) does not check a certificate against `localhost` but
//!   against the machine's host name (its log: `hostname (vm) does not match common name in
//!   certificate (localhost)`). The certificate therefore also names the host, so that
//!   `ldapwhoami -ZZ -H ldap://localhost:PORT` works; a client that checks `localhost` as such
//!   (the gate) needs only the `localhost` SAN.
//! - With `-d`, slapd stays in the foreground in one process and logs to stderr.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::gate;
use super::install_hint;
use super::process::{poll, run_bounded, run_bounded_with_stdin};

/// The directory's base DN.
pub const BASE: &str = "dc=example,dc=org";
/// The search account a gate binds as.
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// [`READER_DN`]'s password.
pub const READER_PASSWORD: &str = "reader-secret";
/// The `rootdn`: not subject to ACLs. The harness's readiness probes bind as it, so they do not
/// show up in [`Slapd::count_binds`] of [`READER_DN`].
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// [`ADMIN_DN`]'s password.
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// Where the users are (one of them, a second `twin`, one level further down).
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// Where the groups are.
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";

/// The server binary (in `/usr/sbin`, which a non-root `PATH` may lack).
const SLAPD: &str = "/usr/sbin/slapd";
/// Loads LDIF into the database while slapd is stopped.
const SLAPADD: &str = "/usr/sbin/slapadd";
/// The Debian packages with the server and with the command-line clients.
const SLAPD_PACKAGE: &str = "slapd";
const CLIENT_PACKAGE: &str = "ldap-utils";

/// How long slapd may take to serve after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Bound on one run of a helper command (`slapadd`, `ldapsearch`, `registry-gate certs`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at free ports before giving up (another process may take one first).
const PORT_ATTEMPTS: usize = 5;
/// The harness writes this line into the log before every start; [`Slapd::count_binds`] splits
/// the log there because connection numbers restart.
const START_MARKER: &str = "--- slapd-harness: starting slapd ---";

/// `slapd.conf`; `{dir}` is filled in.
const CONFIG: &str = r#"
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema

pidfile "{dir}/slapd.pid"
argsfile "{dir}/slapd.args"

modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof

TLSCACertificateFile "{dir}/certs/ca.crt"
TLSCertificateFile "{dir}/certs/server.crt"
TLSCertificateKeyFile "{dir}/certs/server.key"

database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory "{dir}/db"

overlay memberof

access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
access to *
  by dn.exact="cn=reader,dc=example,dc=org" read
  by users read
  by * none
"#;

/// Everything but the groups, loaded with `slapadd` before the first start.
pub const SEED: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: cn=reader,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: reader-secret

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Alice
userPassword: alice-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Bob
userPassword: bob-pw

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Carol
userPassword: carol-pw

dn: uid=mallory,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: mallory
cn: Mallory
sn: Mallory
userPassword: mallory-pw

dn: uid=dana,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dana
uid: dana.alt
cn: Dana
sn: Dana
userPassword: dana-pw

dn: uid=twin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: Twin
sn: Twin
userPassword: twin-pw

dn: ou=contractors,ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: contractors

dn: uid=twin,ou=contractors,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: Twin Contractor
sn: Twin
userPassword: twin-pw

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups
";

/// The groups, added with `ldapadd` once slapd serves, so that the `memberof` overlay sets
/// `memberOf` on their members (it ignores `slapadd`).
pub const SEED_GROUPS: &str = "\
dn: cn=pushers,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: pushers
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=devs,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,dc=example,dc=org
member: uid=carol,ou=people,dc=example,dc=org
member: uid=mallory,ou=people,dc=example,dc=org

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: cn=devs,ou=groups,dc=example,dc=org
";

/// A running slapd. Killed on drop; its temp dir is removed after.
pub struct Slapd {
    /// The `ldap://` port (plain, StartTLS capable).
    ldap_port: u16,
    /// The `ldaps://` port.
    ldaps_port: u16,
    child: Option<Child>,
    // Declared last: removed only after `Drop` has killed slapd.
    dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts slapd with the seeded directory on two free loopback ports. Returns once it
    /// answers a search; panics with its log if it exits or is not ready within 15 s.
    /// Blocking: call it from `spawn_blocking` in async tests.
    pub fn start() -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("slapd-")
            .tempdir()
            .expect("creating the slapd temp dir");
        let mut slapd = Slapd {
            ldap_port: 0,
            ldaps_port: 0,
            child: None,
            dir,
        };
        slapd.write_certs();
        slapd.write_config();
        slapd.load_seed();
        for attempt in 1..=PORT_ATTEMPTS {
            (slapd.ldap_port, slapd.ldaps_port) = free_port_pair();
            slapd.spawn();
            match slapd.wait_ready() {
                Ok(()) => break,
                Err(log) if log.contains("Address already in use") && attempt < PORT_ATTEMPTS => {
                    slapd.stop();
                    // Start the next attempt's log afresh.
                    let _ = fs::remove_file(slapd.log_path());
                }
                Err(log) => panic!("slapd did not start on {}\n{log}", slapd.ldap_url()),
            }
        }
        slapd.add_groups();
        slapd
    }

    /// `ldap://127.0.0.1:PORT`: plain LDAP, StartTLS capable.
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldap://localhost:PORT`: the same listener by the name the certificate carries, for
    /// StartTLS with a host name check.
    pub fn ldap_url_localhost(&self) -> String {
        format!("ldap://localhost:{}", self.ldap_port)
    }

    /// `ldaps://localhost:PORT`: LDAP over TLS from the first byte.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.ldaps_port)
    }

    /// The test CA's certificate (PEM), which signed slapd's.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir().join("certs/ca.crt")
    }

    /// The temp dir: `slapd.conf`, `db/`, `certs/`, `slapd.log`, the seed LDIF.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills slapd and reaps it: its ports then refuse connections. The database stays (mdb
    /// survives a kill); [`Slapd::restart`] serves it again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `kill` fails only if slapd has exited already; `wait` reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again (stopping it first if it runs) on the same ports with the same
    /// database, and waits until it serves; panics with its log if it does not.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        if let Err(log) = self.wait_ready() {
            panic!("slapd did not restart on {}\n{log}", self.ldap_url());
        }
    }

    /// Everything slapd has logged so far, across restarts, each start preceded by a line
    /// `--- slapd-harness: starting slapd ---`.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The number of successful simple binds as `dn` in the log so far, across restarts.
    /// DNs compare ignoring ASCII case and spaces around `,` and `=` (enough for this
    /// directory's DNs, which need no escaping).
    pub fn count_binds(&self, dn: &str) -> usize {
        count_binds_in(&self.log(), dn)
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("slapd.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir().join("slapd.conf")
    }

    /// `certs/{ca.crt,server.crt,server.key}` from the binary under test, for `localhost`,
    /// `127.0.0.1` and the host's names (see the module doc).
    fn write_certs(&self) {
        let mut args = vec!["certs", "generate", "--out", "certs"];
        let names = host_names();
        for name in ["localhost", "127.0.0.1"]
            .into_iter()
            .chain(names.iter().map(String::as_str))
        {
            args.extend(["--san", name]);
        }
        let out = gate::run(&args, self.dir());
        assert!(
            out.status.success(),
            "`registry-gate {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn write_config(&self) {
        let dir = self.dir().to_str().expect("temp paths are UTF-8");
        assert!(
            !dir.contains(['"', '\\', ' ']),
            "path {dir:?} cannot be quoted for slapd.conf"
        );
        let path = self.config_path();
        fs::write(&path, CONFIG.replace("{dir}", dir))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Creates the database with [`SEED`] in it.
    fn load_seed(&self) {
        let db = self.dir().join("db");
        fs::create_dir(&db).unwrap_or_else(|e| panic!("creating {}: {e}", db.display()));
        let ldif = self.dir().join("seed.ldif");
        fs::write(&ldif, SEED).unwrap_or_else(|e| panic!("writing {}: {e}", ldif.display()));
        let mut slapadd = Command::new(SLAPADD);
        slapadd
            .arg("-f")
            .arg(self.config_path())
            .arg("-l")
            .arg(&ldif);
        run_bounded(slapadd, SLAPD_PACKAGE, COMMAND_TIMEOUT).expect_success();
    }

    /// Adds [`SEED_GROUPS`] through the running server.
    fn add_groups(&self) {
        let mut ldapadd = Command::new("ldapadd");
        ldapadd.args([
            "-x",
            "-H",
            &self.ldap_url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ]);
        run_bounded_with_stdin(ldapadd, CLIENT_PACKAGE, Some(SEED_GROUPS), COMMAND_TIMEOUT)
            .expect_success();
    }

    fn spawn(&mut self) {
        let path = self.log_path();
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        writeln!(log, "{START_MARKER}")
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap_port, self.ldaps_port
        );
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.config_path())
            .args(["-h", &urls, "-d", "stats"])
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => panic!("{}", install_hint(SLAPD, SLAPD_PACKAGE)),
                _ => panic!("starting slapd: {e}"),
            });
        self.child = Some(child);
    }

    /// Waits until both ports accept connections and a search as the admin succeeds (which
    /// proves the listener is this slapd's); on failure returns a message with the log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let ready = poll(READY_TIMEOUT, POLL_INTERVAL, || {
            if let Some(status) = self.exited() {
                return Some(Err(format!("slapd exited ({status})\n{}", self.log())));
            }
            let listening = [self.ldap_port, self.ldaps_port]
                .into_iter()
                .all(|port| TcpStream::connect(("127.0.0.1", port)).is_ok());
            (listening && self.admin_search_works()).then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(format!(
                "not ready within {READY_TIMEOUT:?}\n--- slapd log ---\n{}",
                self.log()
            ))
        })
    }

    fn admin_search_works(&self) -> bool {
        let mut search = Command::new("ldapsearch");
        search.args([
            "-x",
            "-H",
            &self.ldap_url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ]);
        search.args(["-b", BASE, "-s", "base", "-LLL", "1.1"]);
        run_bounded(search, CLIENT_PACKAGE, COMMAND_TIMEOUT)
            .status
            .success()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("polling the slapd process")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // No panics here: a drop during unwinding would abort.
        self.stop();
    }
}

/// Two distinct loopback ports that were free a moment ago.
fn free_port_pair() -> (u16, u16) {
    // Both listeners are held at once, so the ports differ.
    let bind = || TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().map(|a: SocketAddr| a.port());
    (
        port(&a).expect("bound address"),
        port(&b).expect("bound address"),
    )
}

/// The names libldap checks a certificate against when told `localhost`: the kernel's host
/// name and, if it resolves, its canonical name (`hostname --fqdn`).
fn host_names() -> Vec<String> {
    let mut names = Vec::new();
    let short = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    names.push(short.trim().to_owned());
    let mut fqdn = Command::new("hostname");
    fqdn.arg("--fqdn");
    let run = run_bounded(fqdn, "hostname", COMMAND_TIMEOUT);
    if run.status.success() {
        names.push(run.stdout.trim().to_owned());
    }
    names.retain(|n| !n.is_empty() && n != "localhost");
    names.dedup();
    names
}

/// Counts `BIND dn="<dn>" method=128` lines whose operation (same `conn` and `op`, within the
/// same start) has a `RESULT tag=97 err=0` line.
fn count_binds_in(log: &str, dn: &str) -> usize {
    let want = dn_key(dn);
    log.split(START_MARKER)
        .map(|run| {
            let mut binds = Vec::new();
            let mut successes = HashSet::new();
            for line in run.lines() {
                let Some(at) = line.find("conn=") else {
                    continue;
                };
                let mut words = line[at..].splitn(4, ' ');
                let (Some(conn), Some(op), Some(what), rest) =
                    (words.next(), words.next(), words.next(), words.next())
                else {
                    continue;
                };
                let rest = rest.unwrap_or_default();
                match what {
                    "BIND" => {
                        let bound = rest
                            .strip_prefix("dn=\"")
                            .and_then(|r| r.strip_suffix("\" method=128"));
                        if bound.is_some_and(|b| dn_key(b) == want) {
                            binds.push((conn, op));
                        }
                    }
                    "RESULT" if rest.starts_with("tag=97 err=0 ") => {
                        successes.insert((conn, op));
                    }
                    _ => {}
                }
            }
            binds.iter().filter(|b| successes.contains(b)).count()
        })
        .sum()
}

/// A DN for comparison: ASCII lower case, without spaces around `,` and `=`.
fn dn_key(dn: &str) -> String {
    let mut key = String::new();
    for (i, rdn) in dn.split(',').enumerate() {
        if i > 0 {
            key.push(',');
        }
        let (attr, value) = rdn.split_once('=').unwrap_or((rdn, ""));
        let _ = write!(key, "{}={}", attr.trim(), value.trim());
    }
    key.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::process::Run;

    const ALICE: &str = "uid=alice,ou=people,dc=example,dc=org";

    /// Runs an ldap-utils command (`-x`: simple bind) with `args`, trusting the test CA.
    fn ldap(slapd: &Slapd, program: &str, args: &[&str]) -> Run {
        let mut command = Command::new(program);
        command
            .arg("-x")
            .args(args)
            .env("LDAPTLS_CACERT", slapd.ca_pem_path());
        run_bounded(command, CLIENT_PACKAGE, COMMAND_TIMEOUT)
    }

    fn whoami(slapd: &Slapd, url: &str, dn: &str, password: &str) -> Run {
        ldap(slapd, "ldapwhoami", &["-H", url, "-D", dn, "-w", password])
    }

    /// `ldapsearch` as `dn` under [`BASE`] for `filter`, LDIF without comments.
    fn search(slapd: &Slapd, dn: &str, password: &str, filter: &str, attrs: &[&str]) -> Run {
        let url = slapd.ldap_url();
        let mut args = vec!["-H", &url, "-D", dn, "-w", password, "-b", BASE, "-LLL"];
        args.push(filter);
        args.extend(attrs);
        ldap(slapd, "ldapsearch", &args)
    }

    /// The DNs in `ldapsearch -LLL` output, sorted.
    fn dns(ldif: &str) -> Vec<&str> {
        let mut dns: Vec<_> = ldif
            .lines()
            .filter_map(|l| l.strip_prefix("dn: "))
            .collect();
        dns.sort_unstable();
        dns
    }

    /// The values of `attr` in `ldapsearch -LLL` output (short lines only: no folding).
    fn values<'a>(ldif: &'a str, attr: &str) -> Vec<&'a str> {
        let prefix = format!("{attr}: ");
        let mut values: Vec<_> = ldif
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect();
        values.sort_unstable();
        values
    }

    #[test]
    fn reader_searches_and_anonymous_sees_nothing() {
        let slapd = Slapd::start();
        assert_eq!(slapd.count_binds(READER_DN), 0, "{}", slapd.log());

        let run = search(&slapd, READER_DN, READER_PASSWORD, "(uid=alice)", &[]).expect_success();
        assert_eq!(dns(&run.stdout), [ALICE], "{}", run.stdout);
        assert!(
            !run.stdout.contains("userPassword"),
            "the reader must not see passwords:\n{}",
            run.stdout
        );
        assert_eq!(slapd.count_binds(READER_DN), 1, "{}", slapd.log());

        let url = slapd.ldap_url();
        let run = ldap(
            &slapd,
            "ldapsearch",
            &["-H", &url, "-b", BASE, "(uid=alice)"],
        );
        assert_eq!(run.status.code(), Some(32), "anonymous search: {run:?}");
        assert!(dns(&run.stdout).is_empty(), "{}", run.stdout);
        assert!(run.stdout.contains("No such object"), "{}", run.stdout);
    }

    #[test]
    fn alice_binds_with_her_password_only_and_each_success_is_counted() {
        let slapd = Slapd::start();
        let url = slapd.ldap_url();
        for _ in 0..2 {
            let run = whoami(&slapd, &url, ALICE, "alice-pw").expect_success();
            assert_eq!(run.stdout.trim(), format!("dn:{ALICE}"));
        }
        let run = whoami(&slapd, &url, ALICE, "wrong").expect_failure();
        assert!(
            run.stderr.contains("Invalid credentials (49)"),
            "{}",
            run.stderr
        );
        // The same DN spelled differently is the same entry to slapd and to the count.
        whoami(
            &slapd,
            &url,
            "UID=alice, ou=People,dc=example,dc=org",
            "alice-pw",
        )
        .expect_success();

        assert_eq!(slapd.count_binds(ALICE), 3, "{}", slapd.log());
        assert_eq!(slapd.count_binds(&format!("uid=bob,{PEOPLE}")), 0);
        assert!(
            slapd.log().contains(" RESULT tag=97 err=49 "),
            "the failed bind is logged:\n{}",
            slapd.log()
        );
    }

    #[test]
    fn starttls_and_ldaps_verify_against_the_test_ca() {
        let slapd = Slapd::start();
        let localhost = slapd.ldap_url_localhost();
        let run = ldap(
            &slapd,
            "ldapwhoami",
            &["-ZZ", "-H", &localhost, "-D", ALICE, "-w", "alice-pw"],
        )
        .expect_success();
        assert_eq!(run.stdout.trim(), format!("dn:{ALICE}"));
        let run = whoami(&slapd, &slapd.ldaps_url(), ALICE, "alice-pw").expect_success();
        assert_eq!(run.stdout.trim(), format!("dn:{ALICE}"));
        assert_eq!(
            slapd.log().matches(" TLS established ").count(),
            2,
            "{}",
            slapd.log()
        );

        // With the system's trust store instead of the test CA, the client refuses the
        // certificate. (`LDAPNOINIT` would also drop `LDAPTLS_*` from the environment.)
        let mut command = Command::new("ldapwhoami");
        command
            .args([
                "-x",
                "-H",
                &slapd.ldaps_url(),
                "-D",
                ALICE,
                "-w",
                "alice-pw",
            ])
            .env_remove("LDAPTLS_CACERT")
            .env("LDAPTLS_REQCERT", "demand");
        let run = run_bounded(command, CLIENT_PACKAGE, COMMAND_TIMEOUT).expect_failure();
        assert!(
            run.stderr.contains("Can't contact LDAP server"),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn stop_refuses_connections_and_restart_serves_the_same_data_on_the_same_port() {
        let mut slapd = Slapd::start();
        let url = slapd.ldap_url();
        whoami(&slapd, &url, ALICE, "alice-pw").expect_success();

        slapd.stop();
        let refused = TcpStream::connect(("127.0.0.1", slapd.ldap_port));
        assert_eq!(
            refused.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionRefused),
            "after stop()"
        );
        whoami(&slapd, &url, ALICE, "alice-pw").expect_failure();

        slapd.restart();
        assert_eq!(slapd.ldap_url(), url);
        whoami(&slapd, &url, ALICE, "alice-pw").expect_success();
        let run =
            search(&slapd, READER_DN, READER_PASSWORD, "(cn=devs)", &["member"]).expect_success();
        assert_eq!(values(&run.stdout, "member").len(), 3, "{}", run.stdout);
        // Connection numbers restart at 1000; the count still sees both binds, once each.
        assert_eq!(slapd.count_binds(ALICE), 2, "{}", slapd.log());
        assert_eq!(slapd.log().matches(START_MARKER).count(), 2);
    }

    #[test]
    fn a_subtree_search_finds_both_twins() {
        let slapd = Slapd::start();
        let run =
            search(&slapd, READER_DN, READER_PASSWORD, "(uid=twin)", &["1.1"]).expect_success();
        assert_eq!(
            dns(&run.stdout),
            [
                "uid=twin,ou=contractors,ou=people,dc=example,dc=org",
                "uid=twin,ou=people,dc=example,dc=org",
            ]
        );
        for dn in dns(&run.stdout) {
            whoami(&slapd, &slapd.ldap_url(), dn, "twin-pw").expect_success();
        }
    }

    #[test]
    fn groups_have_their_members_and_members_their_member_of() {
        let slapd = Slapd::start();
        let devs = format!("cn=devs,{GROUPS}");
        let pushers = format!("cn=pushers,{GROUPS}");
        let admins = format!("cn=admins,{GROUPS}");

        let run = search(
            &slapd,
            READER_DN,
            READER_PASSWORD,
            "(cn=admins)",
            &["member"],
        )
        .expect_success();
        assert_eq!(values(&run.stdout, "member"), [devs.as_str()]);

        // memberOf is operational: asked for by name.
        let cases = [
            ("(uid=alice)", vec![devs.as_str(), pushers.as_str()]),
            ("(uid=bob)", vec![]),
            ("(uid=carol)", vec![devs.as_str()]),
            // Set on the nested group, not passed on to its members (alice).
            ("(cn=devs)", vec![admins.as_str()]),
        ];
        for (filter, want) in cases {
            let run =
                search(&slapd, READER_DN, READER_PASSWORD, filter, &["memberOf"]).expect_success();
            assert_eq!(dns(&run.stdout).len(), 1, "filter={filter}\n{}", run.stdout);
            assert_eq!(values(&run.stdout, "memberOf"), want, "filter={filter}");
        }

        // A user sees the directory too (`by users read`), but no password, not even her own.
        let run = search(&slapd, ALICE, "alice-pw", "(uid=bob)", &["*"]).expect_success();
        assert_eq!(dns(&run.stdout), [format!("uid=bob,{PEOPLE}")]);
        let run =
            search(&slapd, ALICE, "alice-pw", "(uid=alice)", &["userPassword"]).expect_success();
        assert!(!run.stdout.contains("userPassword"), "{}", run.stdout);
    }

    #[test]
    fn count_binds_pairs_bind_and_result_by_connection_and_operation() {
        let log = format!(
            "{START_MARKER}\n\
             t 0x1 conn=1000 op=0 BIND dn=\"uid=alice,ou=people,dc=example,dc=org\" method=128\n\
             t 0x2 conn=1001 op=0 BIND dn=\"uid=alice,ou=people,dc=example,dc=org\" method=128\n\
             t 0x2 conn=1001 op=0 RESULT tag=97 err=49 qtime=0.1 etime=0.1 text=\n\
             t 0x3 conn=1002 op=0 BIND dn=\"\" method=128\n\
             t 0x3 conn=1002 op=0 RESULT tag=97 err=0 qtime=0.1 etime=0.1 text=\n\
             t 0x1 conn=1000 op=0 BIND dn=\"uid=alice,ou=people,dc=example,dc=org\" mech=SIMPLE bind_ssf=0 ssf=0\n\
             t 0x1 conn=1000 op=0 RESULT tag=97 err=0 qtime=0.1 etime=0.1 text=\n\
             t 0x1 conn=1000 op=1 BIND dn=\"uid=Alice,ou=People,dc=example,dc=org\" method=128\n\
             t 0x1 conn=1000 op=1 RESULT tag=97 err=0 qtime=0.1 etime=0.1 text=\n\
             {START_MARKER}\n\
             t 0x1 conn=1001 op=0 RESULT tag=97 err=0 qtime=0.1 etime=0.1 text=\n\
             t 0x1 conn=1000 op=0 BIND dn=\"uid=bob,ou=people,dc=example,dc=org\" method=128\n\
             t 0x1 conn=1000 op=0 RESULT tag=97 err=0 qtime=0.1 etime=0.1 text=\n"
        );
        let cases = [
            ("uid=alice,ou=people,dc=example,dc=org", 2),
            ("UID=alice , ou=people,dc=example,dc=org", 2),
            ("uid=bob,ou=people,dc=example,dc=org", 1),
            ("uid=carol,ou=people,dc=example,dc=org", 0),
        ];
        for (dn, want) in cases {
            assert_eq!(count_binds_in(&log, dn), want, "dn={dn:?}");
        }
    }
}
