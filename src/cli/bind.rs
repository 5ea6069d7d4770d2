//! Binding `listen.addr` and `admin.addr`, with errors that say what to change.

use std::io;
use std::net::SocketAddr;

/// A listener the config names: its key and how to change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Listener {
    /// `[listen] addr`: the TLS listener.
    Listen,
    /// `[admin] addr`: the metrics and health listener.
    Admin,
}

impl Listener {
    fn key(self) -> &'static str {
        match self {
            Listener::Listen => "listen.addr",
            Listener::Admin => "admin.addr",
        }
    }

    /// What to set instead.
    fn remedy(self, what: &str) -> String {
        match self {
            Listener::Listen => {
                format!("set [listen] addr (or REGISTRY_GATE_LISTEN_ADDR) to {what}")
            }
            Listener::Admin => format!(
                "set [admin] addr (or REGISTRY_GATE_ADMIN_ADDR) to {what}, \
                 or turn the admin listener off with [admin] enabled = false"
            ),
        }
    }
}

/// Binds `addr` for `listener`.
pub(super) async fn bind(
    listener: Listener,
    addr: SocketAddr,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!(message(listener, addr, &e)))
}

/// The error for a failed bind: the key, the address, what went wrong and what to do.
fn message(listener: Listener, addr: SocketAddr, e: &io::Error) -> String {
    let key = listener.key();
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "{key} {addr} is in use (another registry-gate on this host, or another \
             program, listens there): {}",
            listener.remedy("a free port")
        ),
        io::ErrorKind::PermissionDenied => format!(
            "{key} {addr}: permission denied (ports below 1024 need root or \
             CAP_NET_BIND_SERVICE): {}",
            listener.remedy("a port from 1024 up")
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "{key} {addr}: this host has no such address: {}",
            listener.remedy("an address of this host (or 0.0.0.0)")
        ),
        _ => format!("{key} {addr}: cannot listen there: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_and_address_and_say_what_to_set() {
        let addr: SocketAddr = "127.0.0.1:9143".parse().expect("addr");
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let other = io::Error::other("boom");
        #[rustfmt::skip]
        let cases = [
            (Listener::Admin, &in_use, "admin.addr 127.0.0.1:9143 is in use (another registry-gate on this host, or another program, listens there): set [admin] addr (or REGISTRY_GATE_ADMIN_ADDR) to a free port, or turn the admin listener off with [admin] enabled = false"),
            (Listener::Listen, &in_use, "listen.addr 127.0.0.1:9143 is in use (another registry-gate on this host, or another program, listens there): set [listen] addr (or REGISTRY_GATE_LISTEN_ADDR) to a free port"),
            (Listener::Listen, &denied, "listen.addr 127.0.0.1:9143: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE): set [listen] addr (or REGISTRY_GATE_LISTEN_ADDR) to a port from 1024 up"),
            (Listener::Admin, &other, "admin.addr 127.0.0.1:9143: cannot listen there: boom"),
        ];
        for (listener, e, want) in cases {
            assert_eq!(message(listener, addr, e), want, "{listener:?} {e}");
        }
    }

    #[tokio::test]
    async fn binding_a_taken_port_says_so() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = bind(Listener::Admin, addr).await.expect_err("in use");
        let want = format!("admin.addr {addr} is in use");
        assert!(e.to_string().starts_with(&want), "{e}");
    }
}
