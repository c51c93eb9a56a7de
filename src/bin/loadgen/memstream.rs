//! In-memory byte queues between the socket and tungstenite (the load
//! generator drives tungstenite clients on monoio sockets this way).
//!
//! The session task feeds bytes read from the socket into `input`;
//! tungstenite reads frames from it (`WouldBlock` when it runs dry, which is
//! how tungstenite says "need more bytes") and writes encoded frames to
//! `output`, which the session writes to the socket. tungstenite itself
//! bounds message and frame size, so `input` holds at most one frame limit
//! plus one read's worth of bytes, and is released whenever it is drained.

use std::io::{self, Read, Write};

/// Bytes in from the socket and out to it.
#[derive(Debug, Default)]
pub struct MemStream {
    /// Received, not yet consumed by tungstenite.
    input: Vec<u8>,
    /// Start of the unconsumed part of `input`.
    input_pos: usize,
    /// Encoded by tungstenite, not yet written to the socket.
    output: Vec<u8>,
}

impl MemStream {
    /// Appends bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.input_pos == self.input.len() {
            self.input.clear();
            self.input_pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Takes everything waiting to be written to the socket.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    fn release_if_drained(&mut self) {
        if self.input_pos == self.input.len() {
            // Released, not kept for reuse: an idle connection pins nothing.
            self.input_pos = 0;
            self.input = Vec::new();
        }
    }
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = &self.input[self.input_pos..];
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let len = available.len().min(buf.len());
        buf[..len].copy_from_slice(&available[..len]);
        self.input_pos += len;
        self.release_if_drained();
        Ok(len)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_fed_then_would_block() {
        let mut stream = MemStream::default();
        stream.feed(b"abc");
        let mut buf = [0u8; 2];
        assert_eq!(stream.read(&mut buf).unwrap(), 2);
        assert_eq!(stream.read(&mut buf).unwrap(), 1);
        assert_eq!(stream.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        stream.feed(b"d");
        assert_eq!(stream.read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'd');
    }

    #[test]
    fn drained_input_is_released() {
        let mut stream = MemStream::default();
        stream.feed(&[0u8; 10_000]);
        let mut buf = vec![0u8; 10_000];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(stream.input.capacity(), 0);
    }
}
