//! One sender of a messaging-shaped run (`messaging`, `mqtt`, `nats`): the
//! loop that writes sends when they are due and takes their replies, shared
//! so that an open loop means the same thing against switchboard and
//! against the baselines (the same schedule, stamps and waits; their
//! latencies and `send_lateness_us_*` compare).
//!
//! What differs between scenarios is behind two small traits: the
//! connection ([`Link`]: a WebSocket, or NATS's TCP text protocol) and the
//! protocol ([`Wire`]: how a send is encoded and which messages answer one).
//!
//! In an open loop a send goes out when it is due whatever is in flight:
//! the sender waits for a reply *or* its next due time, whichever comes
//! first, and never blocks on a read while a send could go out. It reads
//! until a reply only when nothing can be sent before one comes (a closed
//! loop, or a full window: then the send is late, and its stamps say so).

use crate::client::{Incoming, WsConn};
use crate::measure::Counters;
use crate::schedule::{pair_schedule, ready_or_due, SendWindow};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A connection a sender drives: writing what was queued on it, and taking
/// what arrives, waiting or not.
pub trait Link {
    /// One message from the peer.
    type Message;

    /// Writes everything queued.
    async fn flush(&mut self) -> io::Result<()>;

    /// The next message, waiting for it; `None` when the peer closed.
    async fn next_message(&mut self) -> io::Result<Option<Self::Message>>;

    /// The next message if one has arrived, without waiting; after
    /// [`Incoming::Nothing`], [`Self::readable`] announces the next bytes.
    fn try_next_message(&mut self) -> io::Result<Incoming<Self::Message>>;

    /// Waits until the socket has bytes to read (or is closed).
    async fn readable(&self) -> io::Result<()>;
}

impl Link for WsConn {
    type Message = Vec<u8>;

    async fn flush(&mut self) -> io::Result<()> {
        WsConn::flush(self).await
    }

    async fn next_message(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.next_text().await
    }

    fn try_next_message(&mut self) -> io::Result<Incoming> {
        self.try_next_text()
    }

    async fn readable(&self) -> io::Result<()> {
        WsConn::readable(self).await
    }
}

/// A protocol's side of a sender: encoding a send, and telling replies to
/// sends from other messages.
pub trait Wire {
    /// The connection it speaks on.
    type Link: Link;

    /// Queues send number `number` on the schedule, due at `intended`,
    /// its payload stamped by [`crate::schedule::stamped_payload`].
    fn queue_send(
        &mut self,
        link: &mut Self::Link,
        number: u64,
        intended: Instant,
    ) -> io::Result<()>;

    /// Takes one message from the peer: how many sends it answered, each
    /// counted in `counters` (`sent_ok` or `send_errors`). Queues on `link`
    /// any answer the peer expects (sent with the next flush).
    fn on_message(
        &mut self,
        link: &mut Self::Link,
        message: <Self::Link as Link>::Message,
        counters: &Counters,
    ) -> io::Result<usize>;
}

/// One sender: its connection, protocol, schedule and window, kept between
/// the turns of [`send_loop`].
struct Sender<W: Wire> {
    link: W::Link,
    wire: W,
    window: SendWindow,
    /// Every message that arrived has been taken, so only the socket's
    /// readiness can announce the next; false after a blocking read, which
    /// may leave messages buffered (in tungstenite, decrypted by TLS, or in
    /// a NATS read buffer) that no readiness would announce.
    drained: bool,
    counters: Arc<Counters>,
}

/// Sends with `wire` on `link` until the run stops, keeping up to `window`
/// sends awaiting their reply, at `rate` sends/s (open loop) or as fast as
/// replies come (closed loop, no `rate`); see the module documentation.
pub async fn send_loop<W: Wire>(
    link: W::Link,
    wire: W,
    window: usize,
    rate: Option<f64>,
    counters: Arc<Counters>,
    start_at: Arc<OnceLock<Instant>>,
) {
    let (start, interval) = pair_schedule(&start_at, rate).await;
    let window = SendWindow::new(start, interval, window);
    let mut sender = Sender { link, wire, window, drained: false, counters };
    while !sender.counters.stop.load(Ordering::Relaxed) {
        if sender.turn().await.is_err() {
            return;
        }
    }
}

impl<W: Wire> Sender<W> {
    /// Writes every send due that the window has room for, then waits for
    /// a reply or the next due time and takes what came.
    async fn turn(&mut self) -> io::Result<()> {
        self.queue_due(Instant::now())?;
        self.link.flush().await?;
        let Some(due) = self.window.next_due() else {
            self.drained = false;
            let message = self.link.next_message().await?;
            return self.on_message(message.ok_or(io::ErrorKind::UnexpectedEof)?);
        };
        // Messages a blocking read left buffered announce no readiness.
        if !self.drained && self.take_arrived()? > 0 {
            return Ok(());
        }
        if ready_or_due(due, self.link.readable()).await.transpose()?.is_some() {
            self.take_arrived()?;
        }
        Ok(())
    }

    /// Queues every send due at `now` while the window has room.
    fn queue_due(&mut self, now: Instant) -> io::Result<()> {
        while let Some((number, intended)) = self.window.take_due(now) {
            self.wire.queue_send(&mut self.link, number, intended)?;
        }
        Ok(())
    }

    /// Takes every message that has arrived, without waiting: how many.
    fn take_arrived(&mut self) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            match self.link.try_next_message()? {
                Incoming::Message(message) => self.on_message(message)?,
                Incoming::Nothing => {
                    self.drained = true;
                    return Ok(taken);
                }
                Incoming::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
            taken += 1;
        }
    }

    /// Hands a message to the protocol and books the replies it carried.
    fn on_message(&mut self, message: <W::Link as Link>::Message) -> io::Result<()> {
        let replies = self.wire.on_message(&mut self.link, message, &self.counters)?;
        for _ in 0..replies {
            // A reply to no send in flight would be the peer's bug.
            if !self.window.on_reply() {
                return Err(io::Error::other("a reply to no send in flight"));
            }
        }
        Ok(())
    }
}
