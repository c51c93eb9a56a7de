//! Non-blocking reads and writes on a session's socket, driven by readiness.
//!
//! A session waits for readiness (an io_uring poll, or epoll on the legacy
//! driver) instead of keeping a read in flight, so an idle connection holds
//! no read buffer at all: reads go into one scratch buffer per shard and
//! are handed on at once. Invariant: these calls never block (`MSG_DONTWAIT`
//! whatever the descriptor's mode) and never raise SIGPIPE (`MSG_NOSIGNAL`).

use std::io;
use std::os::fd::RawFd;

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// This many bytes (at least one).
    Bytes(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side (or the connection failed).
    Closed,
}

/// Reads what the socket holds, at most `buf.len()` bytes.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> Received {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let read =
            unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if read > 0 {
            return Received::Bytes(read as usize);
        }
        if read == 0 {
            return Received::Closed;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Received::WouldBlock,
            _ => return Received::Closed,
        }
    }
}

/// Writes as much of `bytes` as the socket takes now: `Ok(0)` when it
/// takes nothing (wait for writability), an error when the peer is gone.
pub fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes.
        let sent = unsafe {
            libc::send(
                fd,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_writes_would_block_and_sees_the_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd = server.as_raw_fd();
        let mut buf = [0u8; 8];
        assert_eq!(recv(fd, &mut buf), Received::WouldBlock, "a blocking socket does not block");
        client.write_all(b"hello").unwrap();
        let mut got = Received::WouldBlock;
        for _ in 0..1000 {
            got = recv(fd, &mut buf);
            if got != Received::WouldBlock {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, Received::Bytes(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(send(fd, b"back").unwrap(), 4);
        drop(client);
        let mut closed = false;
        for _ in 0..1000 {
            if recv(fd, &mut buf) == Received::Closed {
                closed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(closed);
    }

    #[test]
    fn send_to_a_full_socket_returns_zero_not_blocking() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let chunk = vec![0u8; 1 << 16];
        let mut total = 0usize;
        loop {
            let sent = send(server.as_raw_fd(), &chunk).unwrap();
            if sent == 0 {
                break;
            }
            total += sent;
            assert!(total < 1 << 30, "a peer that never reads must fill the socket");
        }
        assert!(total > 0);
    }
}
