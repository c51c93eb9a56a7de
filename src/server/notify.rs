//! systemd readiness notification (`Type=notify`): one datagram
//! (`READY=1`, `STOPPING=1`) to the socket named by `$NOTIFY_SOCKET`, a
//! path or, starting with `@`, an abstract socket name. Without the
//! variable (not started by systemd) nothing is sent. Hand-written because
//! the protocol is one `sendto`.

use std::os::unix::net::UnixDatagram;

/// Tells systemd the server is accepting connections.
pub fn ready() {
    send("READY=1");
}

/// Tells systemd the server is draining.
pub fn stopping() {
    send("STOPPING=1");
}

fn send(state: &str) {
    let Some(socket_name) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(error) = send_to(&socket_name.to_string_lossy(), state) {
        tracing::warn!(%error, state, "cannot notify systemd");
    }
}

/// Sends `state` to the notification socket `socket_name`.
pub fn send_to(socket_name: &str, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match socket_name.strip_prefix('@') {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(state.as_bytes(), socket_name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reaches_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("switchboard-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let len = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }
}
