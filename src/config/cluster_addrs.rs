//! Checks of the network addresses in the cluster settings: NATS URLs,
//! `host:port` texts, listener clashes, and the redacted form of a URL an
//! error message may show. Pure functions; each error says why without
//! echoing more than 64 characters of (possibly hostile) input.

use std::net::SocketAddr;

/// The longest NATS URL or `host:port` accepted, bytes.
pub const URL_BYTES_MAX: usize = 256;

/// `nats://` or `tls://`, optional `user:password@`, then `host:port`.
pub(super) fn check_nats_url(url: &str) -> Result<(), String> {
    if url.len() > URL_BYTES_MAX {
        return Err(format!("longer than {URL_BYTES_MAX} bytes"));
    }
    let Some(rest) = url.strip_prefix("nats://").or_else(|| url.strip_prefix("tls://")) else {
        return Err("must start with nats:// or tls://".to_string());
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host_port)| host_port);
    check_host_port(host_port).map_err(|reason| format!("{reason} after the scheme"))
}

/// `host:port`: a DNS name or IPv4 address, or a bracketed IPv6 address,
/// and a port from 1 to 65535.
pub(super) fn check_host_port(text: &str) -> Result<(), String> {
    const NEED: &str = "must be host:port";
    if text.len() > URL_BYTES_MAX {
        return Err(format!("longer than {URL_BYTES_MAX} bytes"));
    }
    let (host, port) = text.rsplit_once(':').ok_or(NEED)?;
    if !matches!(port.parse::<u16>(), Ok(1..)) || port.starts_with('+') {
        return Err(format!("{NEED} with a port from 1 to 65535"));
    }
    let host_ok = match host.strip_prefix('[').and_then(|host| host.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            !host.is_empty() && host.chars().all(allowed)
        }
    };
    if !host_ok {
        return Err(format!("{NEED} with a DNS name, an IPv4 address or an [IPv6] address"));
    }
    Ok(())
}

/// Whether two listeners would take the same port: the same port (not 0,
/// which picks a free one) on the same address or on the unspecified one.
pub(super) fn addrs_clash(a: SocketAddr, b: SocketAddr) -> bool {
    let wildcard = a.ip().is_unspecified() || b.ip().is_unspecified();
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || wildcard)
}

/// A URL for an error message: without its user info (a password, maybe)
/// and cut to its first 64 characters (it may be hostile input).
pub(super) fn redact(url: &str) -> String {
    let text = match url.rsplit_once('@') {
        Some((_, host_port)) => format!("...@{host_port}"),
        None => url.to_string(),
    };
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}
