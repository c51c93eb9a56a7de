//! `nats`: the second baseline. The same shape of load as `messaging`,
//! against NATS JetStream (plain TCP, NATS text protocol): one file-backed
//! stream, a durable push consumer per recipient with explicit acks, and
//! publishes that count when JetStream's PubAck arrives. Recipients ack every
//! delivery. Latency is publish to delivery, from the same stamp as
//! `messaging`.
//!
//! Closed or open loop (`--rate`, `--busy-poll`) as in `messaging`: the
//! senders run [`crate::sender`]'s loop.

use crate::client::Incoming;
use crate::conn::connect_tcp;
use crate::measure::{pairs_of_thread, Counters, MessagingArgs, MessagingResult, RunShared};
use crate::schedule::{micros_since_base, stamped_payload};
use crate::sender::{send_loop, Link, Wire};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use switchboard::http::websocket::socket::{recv, Received};

/// One delivered NATS message.
struct Msg {
    subject: String,
    reply: Option<String>,
    payload: Vec<u8>,
}

/// A NATS client connection: queued output, buffered input.
struct NatsConn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl NatsConn {
    async fn connect(server: SocketAddr) -> io::Result<Self> {
        let mut conn =
            Self { stream: connect_tcp(server, None)?, input: Vec::new(), output: Vec::new() };
        let info = conn.line().await?;
        if !info.starts_with("INFO") {
            return Err(io::Error::other(format!("expected INFO, got {info}")));
        }
        conn.output.extend_from_slice(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\nPING\r\n",
        );
        conn.flush().await?;
        loop {
            let line = conn.line().await?;
            if line == "PONG" {
                return Ok(conn);
            }
            if line.starts_with("-ERR") {
                return Err(io::Error::other(line));
            }
        }
    }

    fn subscribe(&mut self, subject: &str, sid: u32) {
        self.output.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
    }

    fn publish(&mut self, subject: &str, reply: Option<&str>, payload: &[u8]) {
        let head = match reply {
            Some(reply) => format!("PUB {subject} {reply} {}\r\n", payload.len()),
            None => format!("PUB {subject} {}\r\n", payload.len()),
        };
        self.output.extend_from_slice(head.as_bytes());
        self.output.extend_from_slice(payload);
        self.output.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.output);
        let (result, _) = self.stream.write_all(bytes).await;
        result.map(|_| ())
    }

    async fn fill(&mut self) -> io::Result<()> {
        self.flush().await?;
        let mut buf = std::mem::take(&mut self.input);
        buf.reserve(16 * 1024);
        let (len, capacity) = (buf.len(), buf.capacity());
        let (result, slice) = self.stream.read(buf.slice_mut(len..capacity)).await;
        self.input = slice.into_inner();
        if result? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.input[..end]).to_string();
                self.input.drain(..end + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// The next MSG (or HMSG, headers dropped), waiting for it; answers
    /// PINGs on the way (the PONG goes out with the next flush or read).
    async fn next_msg(&mut self) -> io::Result<Msg> {
        loop {
            if let Some(msg) = take_message(&mut self.input, &mut self.output)? {
                return Ok(msg);
            }
            self.fill().await?;
        }
    }

    /// The next MSG if a whole one has arrived, without waiting.
    fn try_next_msg(&mut self) -> io::Result<Incoming<Msg>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(msg) = take_message(&mut self.input, &mut self.output)? {
                return Ok(Incoming::Message(msg));
            }
            match recv(self.stream.as_raw_fd(), &mut chunk) {
                Received::Bytes(read) => self.input.extend_from_slice(&chunk[..read]),
                Received::WouldBlock => return Ok(Incoming::Nothing),
                Received::Closed => return Ok(Incoming::Closed),
            }
        }
    }

    /// A request/reply on `_INBOX`: publishes and waits for the answer.
    async fn request(&mut self, subject: &str, inbox: &str, payload: &[u8]) -> io::Result<Vec<u8>> {
        self.publish(subject, Some(inbox), payload);
        loop {
            let msg = self.next_msg().await?;
            if msg.subject == inbox {
                return Ok(msg.payload);
            }
        }
    }
}

impl Link for NatsConn {
    type Message = Msg;

    async fn flush(&mut self) -> io::Result<()> {
        NatsConn::flush(self).await
    }

    async fn next_message(&mut self) -> io::Result<Option<Msg>> {
        self.next_msg().await.map(Some)
    }

    fn try_next_message(&mut self) -> io::Result<Incoming<Msg>> {
        self.try_next_msg()
    }

    async fn readable(&self) -> io::Result<()> {
        self.stream.readable(false).await
    }
}

/// Takes the next MSG or HMSG (headers dropped) off the front of `input`,
/// answering PINGs into `output` and skipping other lines (`+OK`, `PONG`,
/// `INFO`): `None` until a whole message has arrived (its line stays in
/// `input` until its payload is there too). An `-ERR` is an error.
fn take_message(input: &mut Vec<u8>, output: &mut Vec<u8>) -> io::Result<Option<Msg>> {
    loop {
        let Some(end) = input.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let line = String::from_utf8_lossy(&input[..end]).to_string();
        let words: Vec<&str> = line.split_whitespace().collect();
        let (subject, reply, header_len, total_len) = match words.as_slice() {
            ["MSG", subject, _sid, len] => (*subject, None, 0, len.parse::<usize>()),
            ["MSG", subject, _sid, reply, len] => (*subject, Some(*reply), 0, len.parse()),
            ["HMSG", subject, _sid, hlen, len] => {
                (*subject, None, hlen.parse::<usize>().unwrap_or(0), len.parse())
            }
            ["HMSG", subject, _sid, reply, hlen, len] => {
                (*subject, Some(*reply), hlen.parse::<usize>().unwrap_or(0), len.parse())
            }
            [first, ..] if first.starts_with("-ERR") => return Err(io::Error::other(line.clone())),
            other => {
                if other == ["PING"] {
                    output.extend_from_slice(b"PONG\r\n");
                }
                input.drain(..end + 2);
                continue;
            }
        };
        let total_len = total_len.map_err(|_| io::Error::other(format!("bad length in {line}")))?;
        // The payload follows the line and ends with its own CRLF.
        let payload_at = end + 2;
        if input.len() < payload_at + total_len + 2 {
            return Ok(None);
        }
        let payload =
            input[payload_at + header_len.min(total_len)..payload_at + total_len].to_vec();
        let msg = Msg { subject: subject.to_string(), reply: reply.map(str::to_string), payload };
        input.drain(..payload_at + total_len + 2);
        return Ok(Some(msg));
    }
}

/// Creates the stream and one durable consumer per pair.
async fn set_up(server: SocketAddr, run: u64, pairs: usize, window: usize) -> io::Result<()> {
    let mut admin = NatsConn::connect(server).await?;
    let inbox = format!("_INBOX.{run}.admin");
    admin.subscribe(&inbox, 1);
    let stream = format!(
        r#"{{"name":"LG{run}","subjects":["lg{run}.>"],"storage":"file","retention":"limits"}}"#
    );
    let answer =
        admin.request(&format!("$JS.API.STREAM.CREATE.LG{run}"), &inbox, stream.as_bytes()).await?;
    if answer.windows(7).any(|w| w == b"\"error\"") {
        return Err(io::Error::other(format!(
            "stream create: {}",
            String::from_utf8_lossy(&answer)
        )));
    }
    for pair in 0..pairs {
        let consumer = format!(
            r#"{{"stream_name":"LG{run}","config":{{"durable_name":"d{pair}","deliver_subject":"dlv.{run}.{pair}","ack_policy":"explicit","filter_subject":"lg{run}.{pair}","max_ack_pending":{}}}}}"#,
            window * 64
        );
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.LG{run}.d{pair}");
        let answer = admin.request(&subject, &inbox, consumer.as_bytes()).await?;
        if answer.windows(7).any(|w| w == b"\"error\"") {
            return Err(io::Error::other(format!(
                "consumer create: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
    }
    Ok(())
}

pub fn run(args: MessagingArgs) -> io::Result<MessagingResult> {
    micros_since_base(Instant::now());
    let run_id = micros_since_base(Instant::now()) ^ u64::from(std::process::id());
    crate::block_on(set_up(args.server, run_id, args.pairs, args.window))?;
    let shared = RunShared::new(&args);
    for thread in 0..args.threads {
        let pairs = pairs_of_thread(args.pairs, args.threads, thread);
        let RunShared { counters, ready, start_at, per_pair_rate } = shared.share();
        let (server, window, content_bytes) = (args.server, args.window, args.content_bytes);
        std::thread::spawn(move || {
            crate::cores::pin_thread(thread);
            crate::block_on(async move {
                let mut tasks = Vec::new();
                for pair in pairs {
                    let Ok(mut receiver) = NatsConn::connect(server).await else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    receiver.subscribe(&format!("dlv.{run_id}.{pair}"), 1);
                    let Ok(mut sender) = NatsConn::connect(server).await else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let inbox = format!("_INBOX.{run_id}.s{pair}");
                    sender.subscribe(&format!("{inbox}.*"), 1);
                    if receiver.flush().await.is_err() || sender.flush().await.is_err() {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    ready.fetch_add(1, Ordering::Relaxed);
                    tasks.push(monoio::spawn(receive_loop(receiver, counters.clone())));
                    let wire = JetStreamPublisher {
                        subject: format!("lg{run_id}.{pair}"),
                        inbox,
                        content_bytes,
                    };
                    tasks.push(monoio::spawn(send_loop(
                        sender,
                        wire,
                        window,
                        per_pair_rate,
                        counters.clone(),
                        start_at.clone(),
                    )));
                }
                for task in tasks {
                    task.await;
                }
            })
        });
    }
    Ok(shared.collect(&args))
}

/// The JetStream side of a sender: a PUB to the pair's subject with a reply
/// subject of the sender's inbox, answered there by JetStream's PubAck once
/// the message is stored.
struct JetStreamPublisher {
    subject: String,
    /// `_INBOX.{run}.s{pair}`: send number n's PubAck comes to `{inbox}.n`.
    inbox: String,
    content_bytes: usize,
}

impl Wire for JetStreamPublisher {
    type Link = NatsConn;

    fn queue_send(
        &mut self,
        conn: &mut NatsConn,
        number: u64,
        intended: Instant,
    ) -> io::Result<()> {
        let reply = format!("{}.{number}", self.inbox);
        conn.publish(&self.subject, Some(&reply), &stamped_payload(intended, self.content_bytes));
        Ok(())
    }

    fn on_message(
        &mut self,
        _conn: &mut NatsConn,
        msg: Msg,
        counters: &Counters,
    ) -> io::Result<usize> {
        if !msg.subject.starts_with(&self.inbox) {
            return Ok(0);
        }
        let counter = match msg.payload.windows(7).any(|w| w == b"\"error\"") {
            true => &counters.send_errors,
            false => &counters.sent_ok,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(1)
    }
}

async fn receive_loop(mut conn: NatsConn, counters: Arc<Counters>) {
    while let Ok(msg) = conn.next_msg().await {
        if let Some(reply) = &msg.reply {
            conn.publish(reply, None, b"");
        }
        counters.record_delivery(&msg.payload);
        // Acks go out with the next read (fill flushes), batched.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_taken_whole_and_pings_answered_on_the_way() {
        let mut input = b"+OK\r\nPING\r\nMSG dlv.1 1 _INBOX.a.1 3\r\nab".to_vec();
        let mut output = Vec::new();
        assert!(take_message(&mut input, &mut output).unwrap().is_none(), "payload incomplete");
        assert_eq!(output, b"PONG\r\n");
        assert!(input.starts_with(b"MSG"), "the line waits with its payload");
        input.extend_from_slice(b"c\r\nHMSG s 2 12 15\r\nNATS/1.0\r\n\r\nxyz\r\n");
        let msg = take_message(&mut input, &mut output).unwrap().expect("a message");
        assert_eq!((msg.subject.as_str(), msg.reply.as_deref()), ("dlv.1", Some("_INBOX.a.1")));
        assert_eq!(msg.payload, b"abc");
        let msg = take_message(&mut input, &mut output).unwrap().expect("a message");
        assert_eq!((msg.subject.as_str(), msg.reply), ("s", None));
        assert_eq!(msg.payload, b"xyz", "headers dropped");
        assert!(input.is_empty());
        assert_eq!(output, b"PONG\r\n", "one PING, one PONG");
    }

    #[test]
    fn an_err_line_is_an_error() {
        let mut input = b"-ERR 'Maximum Payload Violation'\r\n".to_vec();
        assert!(take_message(&mut input, &mut Vec::new()).is_err());
    }
}
