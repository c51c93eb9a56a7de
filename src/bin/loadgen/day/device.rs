//! One device of a `day` run: its life over the simulated day (away, or
//! sessions that come and go) and, while connected, its session: sends on
//! its Poisson schedule (with typing before some and a sync copy after
//! each when its account has a linked device), every server request
//! answered with 200, READ receipts for a share of what it receives.
//!
//! A session writes what is due, takes everything that has arrived, and
//! then waits for the socket or its next due time, whichever comes first
//! ([`crate::schedule::ready_or_due`]), so a send never waits behind a
//! quiet socket. At most [`PENDING_MAX`] requests await their answers;
//! beyond that a request is skipped and counted, never queued without
//! bound.

use super::frames::{self, KIND_MESSAGE, KIND_SYNC};
use super::model::{hour_of, Rng};
use super::stats::DayStats;
use super::DayShared;
use crate::client::{Incoming, WsConn};
use crate::framing::envelope_content;
use crate::messaging::ok_response;
use crate::schedule::{micros_since_base, ready_or_due};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use switchboard::protocol::frame::{self, Frame, WsRequest};

/// Requests a device may have awaiting their answers.
pub const PENDING_MAX: usize = 64;

/// The largest body taken from a server frame.
const BODY_BYTES_MAX: usize = 1 << 20;

/// What a request awaiting its answer was.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Send,
    Sync,
    Typing,
    ReadReceipt,
}

/// Device `index`'s whole day.
pub async fn run_device(shared: Arc<DayShared>, index: usize) {
    let device = &shared.population.devices[index];
    if device.away {
        return;
    }
    let (traffic, curve, clock) = (&shared.traffic, &shared.curve, &shared.clock);
    let mut rng = Rng::new(shared.seed, index as u64 + 1);
    let mut at_s = clock.start_s;
    let mut online = rng.chance(traffic.online_share_of_present(curve, hour_of(at_s)));
    loop {
        if !online {
            match traffic.next_connect_s(curve, at_s, clock.end_s, &mut rng) {
                Some(connect_s) => at_s = connect_s,
                None => return,
            }
            monoio::time::sleep_until(clock.instant_at(at_s).into()).await;
        }
        let end_s = (at_s + rng.exponential(traffic.session_secs())).min(clock.end_s);
        session(&shared, index, (at_s, end_s), &mut rng).await;
        (at_s, online) = (end_s, false);
        if at_s >= clock.end_s {
            return;
        }
    }
}

/// One session from `span.0` to `span.1` (day-seconds).
async fn session(shared: &DayShared, index: usize, span: (f64, f64), rng: &mut Rng) {
    let device = &shared.population.devices[index];
    let path = format!(
        "/v1/websocket/?login={}&password={}",
        shared.population.login(device),
        device.password
    );
    let Ok(conn) = WsConn::connect_path(shared.server, None, &path, "").await else {
        DayStats::bump(&shared.stats.connect_failures);
        return;
    };
    shared.stats.on_connected();
    let mut session =
        Session { shared, index, conn, pending: HashMap::new(), next_id: 1, draining: true };
    let _ = session.run(span, rng).await;
    shared.stats.on_disconnected(session.pending.len() as u64);
}

/// A connected device's state.
struct Session<'a> {
    shared: &'a DayShared,
    index: usize,
    conn: WsConn,
    /// Requests awaiting their answers, by id.
    pending: HashMap<u64, Kind>,
    next_id: u64,
    /// Still receiving the queue stored while away (until `queue/empty`).
    draining: bool,
}

impl Session<'_> {
    /// Sends on schedule and answers what arrives until `span.1`.
    async fn run(&mut self, (start_s, end_s): (f64, f64), rng: &mut Rng) -> io::Result<()> {
        let clock = &self.shared.clock;
        let mean_gap_s = 1.0 / self.shared.traffic.sends_per_online_device_sec();
        let mut next_send_s = start_s + rng.exponential(mean_gap_s);
        loop {
            let now_s = clock.day_now_s();
            if now_s >= end_s {
                return Ok(());
            }
            while next_send_s <= now_s {
                self.queue_send(rng)?;
                next_send_s += rng.exponential(mean_gap_s);
            }
            self.take_arrived()?;
            self.conn.flush().await?;
            let due = clock.instant_at(next_send_s.min(end_s));
            if let Some(ready) = ready_or_due(due, self.conn.readable()).await {
                ready?;
            }
        }
    }

    /// Queues `text` as a request of `kind` with id `id`, unless too many
    /// await their answers (then it is counted as skipped).
    fn queue(&mut self, id: u64, kind: Kind, text: String) -> io::Result<bool> {
        if self.pending.len() >= PENDING_MAX {
            DayStats::bump(&self.shared.stats.requests_skipped);
            return Ok(false);
        }
        self.pending.insert(id, kind);
        self.conn.queue_text(text)?;
        Ok(true)
    }

    /// A fresh request id.
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// One send as the model draws it: typing first for some, the message
    /// to every device of a random other account, a sync copy after it.
    fn queue_send(&mut self, rng: &mut Rng) -> io::Result<()> {
        let (shared, stats) = (self.shared, &self.shared.stats);
        let (population, traffic) = (&shared.population, &shared.traffic);
        let me = &population.devices[self.index];
        let accounts = population.accounts.len();
        let recipient = (me.account as usize + 1 + rng.below(accounts - 1)) % accounts;
        let account = &population.accounts[recipient];
        let bytes = rng.content_bytes(traffic.content_bytes);
        let sealed = rng.chance(traffic.sealed_share);
        let stamp_ms = micros_since_base(Instant::now()) / 1000 + 1;
        if rng.chance(traffic.typing_share) {
            let id = self.id();
            if self.queue(id, Kind::Typing, frames::typing(id, &account.uuid, stamp_ms))? {
                DayStats::bump(&stats.typing_offered);
            }
        }
        let devices = population.device_ids(recipient as u32);
        let content = frames::content(bytes, me.account, KIND_MESSAGE);
        let key = sealed.then_some(account.access_key_b64.as_str());
        let id = self.id();
        if self.queue(
            id,
            Kind::Send,
            frames::send(id, &account.uuid, devices, &content, key, stamp_ms),
        )? {
            DayStats::bump(&stats.sends_offered);
            stats.envelopes_addressed.fetch_add(devices.len() as u64, Ordering::Relaxed);
            stats.content_bytes_offered.fetch_add(bytes as u64, Ordering::Relaxed);
            if sealed {
                DayStats::bump(&stats.sealed_offered);
            }
        }
        if population.accounts[me.account as usize].linked {
            let other = [3 - me.device_id];
            let own = &population.accounts[me.account as usize].uuid;
            let content = frames::content(bytes, me.account, KIND_SYNC);
            let id = self.id();
            if self.queue(
                id,
                Kind::Sync,
                frames::send(id, own, &other, &content, None, stamp_ms),
            )? {
                DayStats::bump(&stats.sync_offered);
                DayStats::bump(&stats.envelopes_addressed);
                stats.content_bytes_offered.fetch_add(bytes as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Takes every message that has arrived, without waiting.
    fn take_arrived(&mut self) -> io::Result<()> {
        loop {
            match self.conn.try_next_text()? {
                Incoming::Message(message) => self.on_message(message)?,
                Incoming::Nothing => return Ok(()),
                Incoming::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }

    /// One frame from the server: an answer to one of ours, or a request
    /// to answer (and count).
    fn on_message(&mut self, mut message: Vec<u8>) -> io::Result<()> {
        let stats = &self.shared.stats;
        match frame::decode(&mut message, BODY_BYTES_MAX) {
            Ok(Frame::Response(response)) => {
                let Some(kind) = self.pending.remove(&response.id) else { return Ok(()) };
                let counter = match ((200..300).contains(&response.status), kind) {
                    (false, _) => &stats.requests_failed,
                    (true, Kind::Send) => &stats.sends_ok,
                    (true, Kind::Sync) => &stats.sync_ok,
                    (true, Kind::Typing) => &stats.typing_ok,
                    (true, Kind::ReadReceipt) => &stats.read_receipts_ok,
                };
                DayStats::bump(counter);
                Ok(())
            }
            Ok(Frame::Request(request)) => {
                self.conn.queue_text(ok_response(request.id))?;
                self.on_request(&request)
            }
            Err(_) => Err(io::Error::other("a frame that does not decode")),
        }
    }

    /// Counts a server request, and answers a delivered message with a
    /// READ receipt when the draw says so.
    fn on_request(&mut self, request: &WsRequest) -> io::Result<()> {
        let stats = &self.shared.stats;
        let body = request.body.as_deref().unwrap_or_default();
        match request.path.as_str() {
            "/api/v1/message" => {
                let content = envelope_content(body).unwrap_or_default();
                let Some((written_us, sender, kind)) = frames::read_content(&content) else {
                    return Ok(());
                };
                let now_us = micros_since_base(Instant::now());
                stats.on_delivery(now_us.saturating_sub(written_us), self.draining);
                if kind == KIND_MESSAGE {
                    self.maybe_read_receipt(sender, written_us)?;
                }
            }
            "/api/v1/receipt" => match body.windows(6).any(|w| w == b"\"READ\"") {
                true => DayStats::bump(&stats.read_receipts_seen),
                false => DayStats::bump(&stats.delivery_receipts_seen),
            },
            "/api/v1/typing" => DayStats::bump(&stats.typing_seen),
            "/api/v1/queue/empty" => self.draining = false,
            _ => {}
        }
        Ok(())
    }

    /// A primary device reads a share of its messages: a READ receipt to
    /// the sender, drawn from the message itself (so the draw does not
    /// depend on arrival order).
    fn maybe_read_receipt(&mut self, sender: u32, written_us: u64) -> io::Result<()> {
        let shared = self.shared;
        let me = &shared.population.devices[self.index];
        let Some(account) = shared.population.accounts.get(sender as usize) else { return Ok(()) };
        let stream = (self.index as u64) << 40 ^ written_us;
        let mut rng = Rng::new(shared.seed ^ 0x0EAD_0EAD, stream);
        if me.device_id != 1 || !rng.chance(shared.traffic.read_receipt_share) {
            return Ok(());
        }
        let id = self.id();
        if self.queue(
            id,
            Kind::ReadReceipt,
            frames::read_receipt(id, &account.uuid, written_us / 1000 + 1),
        )? {
            DayStats::bump(&shared.stats.read_receipts_offered);
        }
        Ok(())
    }
}
