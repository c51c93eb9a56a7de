//! The byte path of one connection, plain or TLS, over a socket it does
//! not own: non-blocking reads and writes driven by readiness (see
//! [`socket`]), with rustls's own state machine in between when TLS.
//!
//! rustls is used without an async adapter: ciphertext moves between the
//! socket and rustls with `read_tls`/`write_tls` on the same non-blocking
//! descriptor, so a TLS session waits for readiness like a plain one and an
//! idle connection keeps no read in flight and no read buffer of ours.
//!
//! Invariants: no call blocks; [`Wire::send`] accepts bytes only after
//! everything encrypted earlier has left (so rustls's buffer stays within
//! one write), and [`Wire::flush_pending`] reports what is still to go;
//! a TLS protocol error or a peer's close ends the connection
//! ([`Received::Closed`]); [`Wire::has_buffered_input`] is true while rustls
//! holds decrypted bytes not yet read, which no readiness event would
//! announce.

use crate::http::websocket::socket::{self, Received};
use rustls::ServerConnection;
use std::io::{self, Read, Write};
use std::os::fd::RawFd;

/// `std::io` over a raw non-blocking descriptor, for rustls.
struct FdIo(RawFd);

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match socket::recv(self.0, buf) {
            Received::Bytes(len) => Ok(len),
            Received::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            Received::Closed => Ok(0),
        }
    }
}

impl Write for FdIo {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match socket::send(self.0, bytes)? {
            0 if !bytes.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            sent => Ok(sent),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection's bytes: straight on the socket, or through rustls.
pub struct Wire {
    fd: RawFd,
    tls: Option<Box<ServerConnection>>,
}

impl Wire {
    /// Plain bytes on `fd`.
    pub fn plain(fd: RawFd) -> Self {
        Self { fd, tls: None }
    }

    /// TLS on `fd` with an established (or establishing) rustls session.
    pub fn tls(fd: RawFd, tls: Box<ServerConnection>) -> Self {
        Self { fd, tls: Some(tls) }
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The rustls session, for handing the connection to another shard.
    pub fn into_tls(self) -> Option<Box<ServerConnection>> {
        self.tls
    }

    /// Reads what is available now into `buf` (decrypted when TLS).
    pub fn recv(&mut self, buf: &mut [u8]) -> Received {
        let fd = self.fd;
        match &mut self.tls {
            None => socket::recv(fd, buf),
            Some(tls) => recv_tls(tls, fd, buf),
        }
    }

    /// Takes as much of `bytes` as can go now: `Ok(0)` when nothing can
    /// (wait for writability). When TLS the bytes are encrypted at once
    /// and pushed out as far as the socket takes them.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let fd = self.fd;
        let Some(tls) = &mut self.tls else {
            return socket::send(fd, bytes);
        };
        if !write_out(tls, fd)? {
            return Ok(0);
        }
        let taken = tls.writer().write(bytes)?;
        write_out(tls, fd)?;
        Ok(taken)
    }

    /// Pushes out what rustls holds encrypted: `Ok(true)` once nothing is
    /// left (always for plain), `Ok(false)` when the socket is full.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        let fd = self.fd;
        match &mut self.tls {
            None => Ok(true),
            Some(tls) => write_out(tls, fd),
        }
    }

    /// True while rustls holds decrypted bytes not yet read.
    pub fn has_buffered_input(&mut self) -> bool {
        match &mut self.tls {
            None => false,
            // An error here is an error the next recv reports: say "read".
            Some(tls) => {
                tls.process_new_packets().map_or(true, |io| io.plaintext_bytes_to_read() > 0)
            }
        }
    }

    /// True while a TLS handshake is unfinished (never for plain).
    pub fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// Reads and processes handshake records: `Ok(true)` when some came,
    /// `Ok(false)` when the socket has none now; an error (or the peer
    /// closing) fails the handshake, after sending rustls's alert.
    pub fn read_handshake(&mut self) -> io::Result<bool> {
        let fd = self.fd;
        let Some(tls) = &mut self.tls else { return Ok(true) };
        match tls.read_tls(&mut FdIo(fd)) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => match tls.process_new_packets() {
                Ok(_) => Ok(true),
                Err(error) => {
                    let _ = write_out(tls, fd);
                    Err(io::Error::new(io::ErrorKind::InvalidData, error))
                }
            },
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Writes rustls's pending records: true when none are left.
fn write_out(tls: &mut ServerConnection, fd: RawFd) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut FdIo(fd)) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// Fills `buf` with decrypted bytes, reading ciphertext as needed, until
/// `buf` is full or the socket has nothing more now.
fn recv_tls(tls: &mut ServerConnection, fd: RawFd, buf: &mut [u8]) -> Received {
    let mut filled = 0;
    loop {
        match tls.reader().read(&mut buf[filled..]) {
            Ok(0) if filled == 0 && !buf.is_empty() => return Received::Closed,
            Ok(len) => {
                filled += len;
                if filled == buf.len() || len == 0 {
                    return Received::Bytes(filled);
                }
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) if filled > 0 => return Received::Bytes(filled),
            Err(_) => return Received::Closed,
        }
        match tls.read_tls(&mut FdIo(fd)) {
            Ok(0) if filled > 0 => return Received::Bytes(filled),
            Ok(0) => return Received::Closed,
            Ok(_) => {
                if tls.process_new_packets().is_err() {
                    // Best effort: tell the peer why (the alert rustls queued).
                    let _ = write_out(tls, fd);
                    return Received::Closed;
                }
                // Key updates and session tickets: send them along.
                let _ = write_out(tls, fd);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return if filled > 0 { Received::Bytes(filled) } else { Received::WouldBlock };
            }
            Err(_) if filled > 0 => return Received::Bytes(filled),
            Err(_) => return Received::Closed,
        }
    }
}
