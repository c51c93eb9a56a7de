//! The load generator's clients: a WebSocket client and a keep-alive HTTP
//! client, both on monoio, many per thread, speaking the real protocol.
//!
//! Connections can be bound to a chosen loopback source address
//! (127.0.0.2, 127.0.0.3, ...) so one machine can open more than the ~64k
//! connections one source address allows towards one server port.

use crate::conn::Conn;
use crate::memstream::MemStream;
use std::io;
use std::net::{IpAddr, SocketAddr};
use switchboard::protocol::base64;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Reads an HTTP response head and body; returns (status, body, leftover).
async fn read_response(stream: &mut Conn, mut buf: Vec<u8>) -> io::Result<(u16, Vec<u8>, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("bad status line"))?;
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let (result, back) = stream.read_some(buf).await;
                buf = back;
                if result? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            let rest = buf.split_off(end + 4 + length);
            let body = buf.split_off(end + 4);
            return Ok((status, body, rest));
        }
        let (result, back) = stream.read_some(buf).await;
        buf = back;
        if result? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A keep-alive HTTP/1.1 client on one connection.
pub struct HttpConn {
    stream: Conn,
}

impl HttpConn {
    /// Connects.
    pub fn connect(server: SocketAddr) -> io::Result<Self> {
        Ok(Self { stream: Conn::connect(server, None)? })
    }

    /// Connects without TLS whatever the run uses (the admin listener).
    pub fn connect_plain(server: SocketAddr) -> io::Result<Self> {
        Ok(Self { stream: Conn::connect_plain(server)? })
    }

    /// One request; returns (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        self.request_as(method, path, None, body).await
    }

    /// One request with `Authorization: Basic` of `login:password` when given.
    pub async fn request_as(
        &mut self,
        method: &str,
        path: &str,
        login: Option<(&str, &str)>,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        let auth = login.map_or(String::new(), |(login, password)| {
            let basic =
                switchboard::protocol::base64::encode(format!("{login}:{password}").as_bytes());
            format!("Authorization: Basic {basic}\r\n")
        });
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: loadgen\r\n{auth}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(request).await?;
        let (status, body, _) = read_response(&mut self.stream, Vec::new()).await?;
        Ok((status, body))
    }
}

/// An authenticated WebSocket client.
pub struct WsConn {
    stream: Conn,
    ws: WebSocket<MemStream>,
}

impl WsConn {
    /// Connects and upgrades at `/v1/websocket/` with query credentials.
    pub async fn connect(
        server: SocketAddr,
        source: Option<IpAddr>,
        login: &str,
        password: &str,
    ) -> io::Result<Self> {
        let path = format!("/v1/websocket/?login={login}&password={password}");
        Self::connect_path(server, source, &path, "").await
    }

    /// Connects and upgrades at `path`, with `extra_headers` ("Name: value\r\n" lines).
    pub async fn connect_path(
        server: SocketAddr,
        source: Option<IpAddr>,
        path: &str,
        extra_headers: &str,
    ) -> io::Result<Self> {
        let mut stream = Conn::connect(server, source)?;
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|error| io::Error::other(error.to_string()))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: loadgen\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\n\
             Sec-WebSocket-Version: 13\r\n{extra_headers}\r\n",
            base64::encode(&key)
        );
        stream.write_all(request.into_bytes()).await?;
        let (status, _, leftover) = read_response(&mut stream, Vec::new()).await?;
        if status != 101 {
            return Err(io::Error::other(format!("upgrade answered {status}")));
        }
        let mut memstream = MemStream::default();
        memstream.feed(&leftover);
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        Ok(Self { stream, ws: WebSocket::from_raw_socket(memstream, Role::Client, Some(config)) })
    }

    /// Queues a text frame (sent by the next [`Self::flush`]).
    pub fn queue_text(&mut self, text: String) -> io::Result<()> {
        self.ws.write(Message::text(text)).map_err(io::Error::other)
    }

    /// Writes everything queued (and any record TLS must answer).
    pub async fn flush(&mut self) -> io::Result<()> {
        let _ = self.ws.flush();
        let bytes = self.ws.get_mut().take_output();
        if bytes.is_empty() {
            return self.stream.push_tls().await;
        }
        self.stream.write_all(bytes).await
    }

    /// Queues a binary frame (sent by the next [`Self::flush`]).
    pub fn queue_binary(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        self.ws.write(Message::binary(bytes)).map_err(io::Error::other)
    }

    /// The next text or binary message's bytes; `None` when the server
    /// closed. Pings are answered on the way.
    pub async fn next_text(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.buffered_message()? {
                Incoming::Message(bytes) => return Ok(Some(bytes)),
                Incoming::Closed => return Ok(None),
                Incoming::Nothing => {}
            }
            self.flush().await?;
            let (result, buf) = self.stream.read_some(Vec::new()).await;
            if result? == 0 {
                return Ok(None);
            }
            self.ws.get_mut().feed(&buf);
        }
    }

    /// The next message if one has arrived, without waiting; after
    /// [`Incoming::Nothing`], [`Self::readable`] announces the next bytes.
    /// Pongs to pings are queued for the next [`Self::flush`].
    pub fn try_next_text(&mut self) -> io::Result<Incoming> {
        // The size of the reads of `next_text`, and of tungstenite's buffer.
        let mut chunk = [0u8; 4096];
        loop {
            match self.buffered_message()? {
                Incoming::Nothing => {}
                incoming => return Ok(incoming),
            }
            match self.stream.try_read(&mut chunk)? {
                None => return Ok(Incoming::Nothing),
                Some(0) => return Ok(Incoming::Closed),
                Some(read) => self.ws.get_mut().feed(&chunk[..read]),
            }
        }
    }

    /// Waits until the socket has bytes to read (see [`Self::try_next_text`]).
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    /// The next message in the bytes already read, or
    /// [`Incoming::Nothing`] when tungstenite needs more.
    fn buffered_message(&mut self) -> io::Result<Incoming> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(Incoming::Message(text.as_bytes().to_vec())),
                Ok(Message::Binary(bytes)) => return Ok(Incoming::Message(bytes.to_vec())),
                Ok(Message::Close(_)) => return Ok(Incoming::Closed),
                Ok(_) => {}
                Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Incoming::Nothing)
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Incoming::Closed)
                }
                Err(error) => return Err(io::Error::other(error)),
            }
        }
    }
}

/// What a look at a connection's input found: a WebSocket message's bytes,
/// or another protocol's message (NATS's, in [`crate::nats`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<M = Vec<u8>> {
    /// A whole message (a text or binary message's bytes on a WebSocket).
    Message(M),
    /// No whole message yet.
    Nothing,
    /// The server closed the connection.
    Closed,
}

/// Loopback source address number `index` (127.0.0.2 upwards), or none when
/// `count` is 0.
pub fn source_address(index: usize, count: usize) -> Option<IpAddr> {
    if count == 0 {
        return None;
    }
    let n = 2 + (index % count) as u32;
    Some(IpAddr::from([127, (n >> 16) as u8, (n >> 8) as u8, n as u8]))
}
