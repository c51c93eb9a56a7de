//! One client connection's bytes, plain TCP or TLS (`--tls-ca FILE`), on
//! monoio. TLS is rustls driven by hand: plaintext written before the
//! handshake ends is queued by rustls and sent after it, so connecting
//! stays synchronous and the handshake happens on the first exchange.

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, OnceLock};
use switchboard::http::websocket::socket::{recv, Received};

/// The TLS client settings of this run, when `--tls-ca` was given.
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Makes every later connection TLS, trusting the certificates in `ca_file`.
pub fn use_tls(ca_file: &std::path::Path) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in switchboard::tls::read_certificates(ca_file)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = TLS.set(Arc::new(config));
    Ok(())
}

/// Opens a TCP connection, from `source` when given.
pub fn connect_tcp(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::STREAM, None)?;
    if let Some(source) = source {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    socket.connect(&server.into())?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    TcpStream::from_std(socket.into())
}

/// A connection to the server: plain, or TLS when the run uses it.
pub struct Conn {
    stream: TcpStream,
    tls: Option<Box<Tls>>,
}

/// rustls's client state and the ciphertext read but not yet taken by it.
struct Tls {
    conn: rustls::ClientConnection,
    cipher_in: Vec<u8>,
}

impl Conn {
    /// Connects (TLS when configured; the handshake runs on first use).
    pub fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<Self> {
        let stream = connect_tcp(server, source)?;
        let tls = match TLS.get() {
            Some(config) => {
                let name = ServerName::IpAddress(server.ip().into());
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(io::Error::other)?;
                Some(Box::new(Tls { conn, cipher_in: Vec::new() }))
            }
            None => None,
        };
        Ok(Self { stream, tls })
    }

    /// A plain connection whatever the run uses (the admin listener).
    pub fn connect_plain(server: SocketAddr) -> io::Result<Self> {
        Ok(Self { stream: connect_tcp(server, None)?, tls: None })
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        match &mut self.tls {
            None => self.stream.write_all(bytes).await.0.map(|_| ()),
            Some(tls) => {
                tls.conn.writer().write_all(&bytes)?;
                self.push_tls().await
            }
        }
    }

    /// Sends what rustls has encrypted (handshake records, application data,
    /// answers to records read); nothing on a plain connection.
    pub async fn push_tls(&mut self) -> io::Result<()> {
        let Some(tls) = &mut self.tls else { return Ok(()) };
        let mut out = Vec::new();
        while tls.conn.wants_write() {
            tls.conn.write_tls(&mut out)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(out).await.0.map(|_| ())
    }

    /// Reads some bytes onto the end of `buf`; `Ok(0)` when the server closed.
    pub async fn read_some(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if self.tls.is_none() {
            buf.reserve(4096);
            let (len, capacity) = (buf.len(), buf.capacity());
            let (result, slice) = self.stream.read(buf.slice_mut(len..capacity)).await;
            return (result, slice.into_inner());
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.take_plaintext(&mut chunk) {
                Ok(Some(read)) => {
                    buf.extend_from_slice(&chunk[..read]);
                    return (Ok(read), buf);
                }
                Ok(None) => {}
                Err(error) => return (Err(error), buf),
            }
            if let Err(error) = self.push_tls().await {
                return (Err(error), buf);
            }
            let (result, cipher) = self.stream.read(Vec::with_capacity(16 * 1024)).await;
            match result {
                Ok(0) => return (Ok(0), buf),
                Ok(_) => self.tls.as_mut().expect("tls").cipher_in.extend_from_slice(&cipher),
                Err(error) => return (Err(error), buf),
            }
        }
    }

    /// Waits until the socket has bytes to read (or is closed). Plaintext
    /// that TLS already decrypted is not announced: [`Self::try_read`]
    /// until `Ok(None)` first.
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable(false).await
    }

    /// Reads what is there without waiting into `buf`: `Some(len)` when
    /// bytes came (`Some(0)`: the server closed, or the connection failed),
    /// `None` when nothing is to be read now. Records that TLS must answer
    /// go out with the next [`Self::push_tls`].
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        debug_assert!(!buf.is_empty());
        let fd = self.stream.as_raw_fd();
        if self.tls.is_none() {
            return Ok(match recv(fd, buf) {
                Received::Bytes(read) => Some(read),
                Received::WouldBlock => None,
                Received::Closed => Some(0),
            });
        }
        loop {
            if let Some(read) = self.take_plaintext(buf)? {
                return Ok(Some(read));
            }
            let mut cipher = [0u8; 16 * 1024];
            match recv(fd, &mut cipher) {
                Received::Bytes(read) => {
                    self.tls.as_mut().expect("tls").cipher_in.extend_from_slice(&cipher[..read])
                }
                Received::WouldBlock => return Ok(None),
                Received::Closed => return Ok(Some(0)),
            }
        }
    }

    /// Moves decrypted bytes into `buf`, feeding rustls the ciphertext
    /// held: `Some(len)` when some came (0: the server closed).
    fn take_plaintext(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let tls = self.tls.as_mut().expect("tls");
        loop {
            match tls.conn.reader().read(buf) {
                Ok(read) => return Ok(Some(read)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            if tls.cipher_in.is_empty() {
                return Ok(None);
            }
            let taken = tls.conn.read_tls(&mut &tls.cipher_in[..])?;
            tls.cipher_in.drain(..taken);
            tls.conn.process_new_packets().map_err(io::Error::other)?;
        }
    }
}
