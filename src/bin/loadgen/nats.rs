//! `nats`: the second baseline. The same shape of load as `messaging`,
//! against NATS JetStream (plain TCP, NATS text protocol): one file-backed
//! stream, a durable push consumer per recipient with explicit acks, and
//! publishes that count when JetStream's PubAck arrives. Recipients ack every
//! delivery. Latency is publish to delivery, from the same stamp as
//! `messaging`.

use crate::conn::connect_tcp;
use crate::measure::{pairs_of_thread, Counters, MessagingArgs, MessagingResult, RunShared};
use crate::schedule::{
    intended_send_time, micros_since_base, pair_schedule, stamped_payload, wait_for_next_send,
};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

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

    /// The next MSG (or HMSG, headers dropped); answers PINGs on the way.
    async fn next_msg(&mut self) -> io::Result<Msg> {
        loop {
            let line = self.line().await?;
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
                ["PING"] => {
                    self.output.extend_from_slice(b"PONG\r\n");
                    continue;
                }
                [first, ..] if first.starts_with("-ERR") => {
                    return Err(io::Error::other(line.clone()))
                }
                _ => continue,
            };
            let total_len =
                total_len.map_err(|_| io::Error::other(format!("bad length in {line}")))?;
            let (subject, reply) = (subject.to_string(), reply.map(str::to_string));
            while self.input.len() < total_len + 2 {
                self.fill().await?;
            }
            let payload = self.input[header_len.min(total_len)..total_len].to_vec();
            self.input.drain(..total_len + 2);
            return Ok(Msg { subject, reply, payload });
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
                    let subject = format!("lg{run_id}.{pair}");
                    let (counters, start_at) = (counters.clone(), start_at.clone());
                    tasks.push(monoio::spawn(async move {
                        let _ = send_loop(
                            sender,
                            subject,
                            inbox,
                            window,
                            content_bytes,
                            per_pair_rate,
                            counters,
                            start_at,
                        )
                        .await;
                    }));
                }
                for task in tasks {
                    task.await;
                }
            })
        });
    }
    Ok(shared.collect(&args))
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    mut conn: NatsConn,
    subject: String,
    inbox: String,
    window: usize,
    content_bytes: usize,
    rate: Option<f64>,
    counters: Arc<Counters>,
    start_at: Arc<OnceLock<Instant>>,
) -> io::Result<()> {
    let (start, interval) = pair_schedule(&start_at, rate).await;
    let (mut sent, mut inflight) = (0u64, 0usize);
    while !counters.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while inflight < window {
            let Some(intended) = intended_send_time(start, interval, sent, now) else { break };
            let reply = format!("{inbox}.{sent}");
            conn.publish(&subject, Some(&reply), &stamped_payload(intended, content_bytes));
            sent += 1;
            inflight += 1;
        }
        conn.flush().await?;
        if inflight == 0 {
            wait_for_next_send(start, interval, sent).await;
            continue;
        }
        let msg = conn.next_msg().await?;
        if msg.subject.starts_with(&inbox) {
            inflight -= 1;
            if msg.payload.windows(7).any(|w| w == b"\"error\"") {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.sent_ok.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
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
