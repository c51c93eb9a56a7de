//! An accepted connection: the monoio socket (which owns the descriptor and
//! gives readiness) with its [`Wire`] (plain or TLS bytes), and the async
//! reads, writes and TLS handshake the HTTP loop needs on top of them.
//!
//! Invariants: the stream outlives the wire (both move together until the
//! session splits them, keeping both); a TLS handshake ends within the
//! deadline its caller sets, and a failed one is counted and closes the
//! connection; reads and writes here wait only on readiness.

use crate::http::websocket::socket::Received;
use crate::http::wire::Wire;
use monoio::net::TcpStream;
use rustls::ServerConnection;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// A connection: its socket and its byte path.
pub struct Transport {
    /// The socket (readiness, peer address; closes on drop).
    pub stream: TcpStream,
    /// Plain or TLS bytes over it.
    pub wire: Wire,
}

impl Transport {
    /// A plain connection.
    pub fn plain(stream: TcpStream) -> Self {
        let wire = Wire::plain(stream.as_raw_fd());
        Self { stream, wire }
    }

    /// A connection whose TLS session already exists (handed off).
    pub fn with_tls(stream: TcpStream, tls: Option<Box<ServerConnection>>) -> Self {
        match tls {
            Some(tls) => {
                let wire = Wire::tls(stream.as_raw_fd(), tls);
                Self { stream, wire }
            }
            None => Self::plain(stream),
        }
    }

    /// Runs the server side of a TLS handshake on `stream` (the caller
    /// bounds it with a deadline); any failure closes the connection.
    pub async fn accept_tls(
        stream: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut transport = Self { wire: Wire::tls(stream.as_raw_fd(), Box::new(tls)), stream };
        loop {
            transport.flush_all().await?;
            if !transport.wire.handshaking() {
                return Ok(transport);
            }
            match transport.wire.read_handshake()? {
                true => {}
                false => transport.stream.readable(false).await?,
            }
        }
    }

    /// Reads what is available into the spare room of `buf` (at least
    /// `chunk_bytes`), waiting for readability; `Ok(0)` means closed.
    pub async fn read_more(
        &mut self,
        mut buf: Vec<u8>,
        chunk_bytes: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        buf.reserve(chunk_bytes);
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        loop {
            match self.wire.recv(&mut buf[len..]) {
                Received::Bytes(read) => {
                    buf.truncate(len + read);
                    return (Ok(read), buf);
                }
                Received::Closed => {
                    buf.truncate(len);
                    return (Ok(0), buf);
                }
                Received::WouldBlock => {
                    if let Err(error) = self.stream.readable(false).await {
                        buf.truncate(len);
                        return (Err(error), buf);
                    }
                }
            }
        }
    }

    /// Writes all of `bytes` (and whatever TLS holds), waiting for
    /// writability as needed.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < bytes.len() {
            match self.wire.send(&bytes[written..])? {
                0 => self.stream.writable(false).await?,
                sent => written += sent,
            }
        }
        self.flush_all().await
    }

    /// Waits until TLS has nothing left to write.
    async fn flush_all(&mut self) -> io::Result<()> {
        while !self.wire.flush_pending()? {
            self.stream.writable(false).await?;
        }
        Ok(())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.peer_addr()
    }
}
