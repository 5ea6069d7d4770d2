//! Connections to the directory, kept open and reused.
//!
//! Two pools of at most `pool_size` connections each: one bound as `bind_dn` for
//! searches, one for the binds that check users' passwords (a user bind changes who
//! the connection is, so those never search). A connection the directory closed is
//! noticed on use and replaced once; URLs are tried in order (failover).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ldap::LdapUrl;

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Bound as `bind_dn` (or anonymous), for searches.
    Search,
    /// For user binds.
    Bind,
}

/// How connections are opened.
#[derive(Clone)]
pub struct Connector {
    /// Where, in order of preference.
    pub urls: Vec<LdapUrl>,
    /// StartTLS on `ldap://` URLs.
    pub starttls: bool,
    /// The TLS client configuration (CA from `ldap.ca` or the system roots).
    pub tls: Arc<rustls::ClientConfig>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// One operation.
    pub timeout: Duration,
    /// The search identity: DN and password.
    pub bind: Option<(String, String)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("urls", &self.urls)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .finish_non_exhaustive()
    }
}

/// Why an operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No connection could be made, or it broke, or the directory did not answer in time.
    #[error("directory unreachable: {0}")]
    Unreachable(String),
    /// The directory answered with a result code.
    #[error("directory answered {rc} ({text})")]
    Answer {
        /// The LDAP result code.
        rc: u32,
        /// The code's name and the diagnostic message.
        text: String,
    },
}

impl Failure {
    /// Classifies a client error: result codes are answers; busy (51), unavailable
    /// (52) and "other" (80) mean "try later", like everything on the transport.
    pub fn from_ldap(e: LdapError) -> Failure {
        match e {
            LdapError::LdapResult { result } if !matches!(result.rc, 51 | 52 | 80) => {
                Failure::Answer {
                    rc: result.rc,
                    text: result.to_string(),
                }
            }
            other => Failure::Unreachable(other.to_string()),
        }
    }

    /// Whether the directory could not be reached or was too busy to answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Failure::Unreachable(_))
    }
}

/// A bounded set of idle connections for one [`Role`].
#[derive(Debug)]
pub struct Pool {
    role: Role,
    idle: Mutex<Vec<Ldap>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from a pool; [`Pool::put`] gives it back.
pub struct Lease {
    /// The client handle.
    pub ldap: Ldap,
    /// Whether it was open before (a failure then may be a stale connection).
    pub reused: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// An empty pool of at most `size` connections.
    pub fn new(role: Role, size: usize) -> Pool {
        Pool {
            role,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// An idle connection, or a new one; waits while `size` are in use (at most the
    /// connect timeout).
    pub async fn take(&self, connector: &Connector) -> Result<Lease, Failure> {
        let permit = tokio::time::timeout(
            connector.connect_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| Failure::Unreachable("every pooled connection stayed busy".into()))?
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
        loop {
            let Some(mut ldap) = self.idle.lock().pop() else {
                break;
            };
            if !ldap.is_closed() {
                return Ok(Lease {
                    ldap,
                    reused: true,
                    _permit: permit,
                });
            }
        }
        self.fresh(connector, permit).await
    }

    /// A new connection regardless of idle ones (after a stale one failed).
    pub async fn take_fresh(&self, connector: &Connector, old: Lease) -> Result<Lease, Failure> {
        let Lease { _permit, .. } = old;
        self.fresh(connector, _permit).await
    }

    async fn fresh(
        &self,
        connector: &Connector,
        permit: OwnedSemaphorePermit,
    ) -> Result<Lease, Failure> {
        let ldap = connect(connector, self.role).await?;
        Ok(Lease {
            ldap,
            reused: false,
            _permit: permit,
        })
    }

    /// Returns a healthy connection for reuse.
    pub fn put(&self, lease: Lease) {
        let Lease { mut ldap, .. } = lease;
        if !ldap.is_closed() {
            self.idle.lock().push(ldap);
        }
    }
}

/// Opens a connection to the first URL that answers, bound as the search identity
/// for [`Role::Search`].
async fn connect(connector: &Connector, role: Role) -> Result<Ldap, Failure> {
    let mut last = Failure::Unreachable("no URL".into());
    for url in &connector.urls {
        match connect_one(connector, url, role).await {
            Ok(ldap) => return Ok(ldap),
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "LDAP connection failed");
                if !e.is_unreachable() {
                    // A refused search bind is a configuration error, the same everywhere.
                    return Err(e);
                }
                last = e;
            }
        }
    }
    Err(last)
}

async fn connect_one(connector: &Connector, url: &LdapUrl, role: Role) -> Result<Ldap, Failure> {
    let started = Instant::now();
    let settings = LdapConnSettings::new()
        .set_conn_timeout(connector.connect_timeout)
        .set_starttls(connector.starttls && !url.tls)
        .set_config(connector.tls.clone());
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url.to_string())
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    if let (Role::Search, Some((dn, password))) = (role, &connector.bind) {
        ldap.with_timeout(connector.timeout)
            .simple_bind(dn, password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| match Failure::from_ldap(e) {
                Failure::Answer { rc, text } => Failure::Answer {
                    rc,
                    text: format!("search bind as ldap.bind_dn {dn:?} refused: {text}"),
                },
                f => f,
            })?;
    }
    tracing::debug!(url = %url, ?role, elapsed = ?started.elapsed(), "LDAP connection opened");
    Ok(ldap)
}
