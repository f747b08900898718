//! Driving a replay: the handshake, then sending our side on schedule while
//! collecting the peer's messages, then the report.

use super::compare::{compare, Comparison, Expected};
use super::deflate::{Compressor, DirParams, Negotiated};
use super::export::LoadedSession;
use super::handshake::{
    self, build_client_request, build_server_response, check_request, check_response, read_head,
    HeaderEdits,
};
use super::pacing::{self, scaled};
use super::target::Target;
use super::transport::{connect, is_timeout, Conn, TlsOptions};
use super::wire::{close_payload, encode_frame, is_control, Receiver, OP_CLOSE};
use super::{ReplayError, ReplayLimits};
use crate::types::Dir;
use regex::Regex;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Longest single read wait, so schedules and deadlines are checked often.
const POLL: Duration = Duration::from_millis(20);

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Recorded delays are divided by this; 0 = as fast as possible.
    pub speed: f64,
    /// `--wait-replies` / `--wait-requests`.
    pub wait: bool,
    /// Per wait, per handshake, and for the closing exchange.
    pub timeout: Duration,
    /// `--ignore`: matches in text payloads are masked on both sides before comparing.
    pub ignore: Vec<Regex>,
    /// Send the recorded wire bytes of our side instead of re-framing.
    pub raw: bool,
    /// With `raw`: send the recorded handshake bytes instead of our own.
    pub with_handshake: bool,
    /// Memory and size limits.
    pub limits: ReplayLimits,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: 1.0,
            wait: false,
            timeout: Duration::from_secs(10),
            ignore: Vec::new(),
            raw: false,
            with_handshake: false,
            limits: ReplayLimits::default(),
        }
    }
}

/// The handshake of the replayed session, as it happened on the replay.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HandshakeReport {
    /// Request target of the upgrade request.
    pub uri: String,
    /// Status code of the response (101 when accepted).
    pub status: u16,
    /// Accepted `Sec-WebSocket-Protocol`; None when none.
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
}

/// What one side of the replay sent or received.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// WebSocket messages (data and control).
    pub messages: u64,
    /// Bytes written or read after the handshake.
    pub bytes: u64,
}

/// A protocol violation in what the peer sent.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyReport {
    /// Anomaly name, as listed in `docs/anomalies.md`.
    pub name: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

/// The outcome of one replay, printed as text or JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// `client` or `server`: the role wsreplay played.
    pub mode: &'static str,
    /// The recorded wire bytes were sent (`--raw`) instead of re-framed messages.
    pub raw: bool,
    /// Id of the replayed session in the export.
    pub session: u64,
    /// The target URL, or the client's address.
    pub peer: String,
    /// The handshake as it happened on the replay.
    pub handshake: HandshakeReport,
    /// What wsreplay sent.
    pub sent: Counts,
    /// What the peer sent.
    pub received: Counts,
    /// `close_frame`, `eof`, `timeout`, `error: …`: how the exchange ended.
    pub ended_by: String,
    /// The peer's messages against the recorded ones of its direction.
    pub comparison: Comparison,
    /// Protocol violations in what the peer sent.
    pub anomalies: Vec<AnomalyReport>,
    /// What wsreplay changed or could not do, in order.
    pub notes: Vec<String>,
}

impl Report {
    /// The report as human-readable text, for the terminal.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let peer_dir = if self.mode == "client" {
            "server"
        } else {
            "client"
        };
        s.push_str(&format!(
            "wsreplay {}{}: session {} with {}\n",
            self.mode,
            if self.raw { " (raw)" } else { "" },
            self.session,
            self.peer
        ));
        let h = &self.handshake;
        s.push_str(&format!(
            "handshake: {} {} subprotocol={} extensions={}\n",
            h.status,
            h.uri,
            h.subprotocol.as_deref().unwrap_or("-"),
            if h.extensions.is_empty() {
                "-".to_string()
            } else {
                h.extensions.join(" | ")
            }
        ));
        s.push_str(&format!(
            "sent: {} messages, {} bytes; received: {} messages, {} bytes; ended by {}\n",
            self.sent.messages,
            self.sent.bytes,
            self.received.messages,
            self.received.bytes,
            self.ended_by
        ));
        let c = &self.comparison;
        s.push_str(&format!(
            "{peer_dir} messages: {} recorded, {} received, {} equal, {} different{}\n",
            c.recorded,
            c.received,
            c.equal,
            c.different,
            if c.not_compared > 0 {
                format!(", {} not compared (receive budget)", c.not_compared)
            } else {
                String::new()
            }
        ));
        match &c.first_difference {
            None if c.same => s.push_str("result: SAME as recorded\n"),
            None => s.push_str("result: DIFFERENT (some messages could not be compared)\n"),
            Some(d) => {
                s.push_str(&format!(
                    "result: DIFFERENT; first difference at message {} ({})",
                    d.index, d.kind
                ));
                if let Some(off) = d.byte_offset {
                    s.push_str(&format!(" at byte {off}"));
                }
                s.push('\n');
                if let Some(r) = &d.recorded {
                    s.push_str(&format!(
                        "  recorded: {} len {}: {}\n",
                        r.opcode, r.len, r.excerpt
                    ));
                }
                if let Some(r) = &d.received {
                    s.push_str(&format!(
                        "  received: {} len {}: {}\n",
                        r.opcode, r.len, r.excerpt
                    ));
                }
            }
        }
        for a in &self.anomalies {
            s.push_str(&format!("anomaly: {}: {}\n", a.name, a.detail));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }
}

/// Plays the original client toward `target`.
pub fn run_client(
    session: &LoadedSession,
    target: &Target,
    target_url: &str,
    tls: &TlsOptions,
    edits: &HeaderEdits,
    opts: &ReplayOptions,
) -> Result<Report, ReplayError> {
    let mut report = Report {
        mode: "client",
        raw: opts.raw,
        session: session.meta.id,
        peer: target_url.to_string(),
        ..Default::default()
    };
    let mut conn = connect(target, tls, opts.timeout)?;
    let (request, key) = if opts.raw && opts.with_handshake {
        report
            .notes
            .push("sent the recorded request.http verbatim (Host not rewritten)".into());
        let recorded_key = handshake::parse_request(&session.request)
            .ok()
            .and_then(|h| h.get("sec-websocket-key").map(str::to_string));
        (session.request.clone(), recorded_key)
    } else {
        let req = build_client_request(&session.request, &session.meta, target, edits);
        report.notes.extend(req.notes.iter().cloned());
        (req.bytes, Some(req.key))
    };
    report.handshake.uri = handshake::parse_request(&request)
        .map(|h| h.uri)
        .unwrap_or_default();
    conn.set_write_timeout(opts.timeout)
        .map_err(|e| ReplayError::local(format!("socket: {e}")))?;
    conn.write_all(&request)
        .and_then(|_| conn.flush())
        .map_err(|e| ReplayError::peer(format!("sending the handshake: {e}")))?;
    let (head, rest) = read_head(&mut conn, opts.limits.max_handshake_bytes, opts.timeout)?;
    let accepted = check_response(&head, key.as_deref())?;
    report.handshake.status = accepted.head.status;
    report.handshake.subprotocol = accepted.subprotocol.clone();
    report.handshake.extensions = accepted.extensions.clone();
    report.handshake.deflate = accepted.deflate.is_some();
    let recorded = handshake::recorded_deflate(&session.meta);
    if recorded.is_some() && accepted.deflate.is_none() {
        report.notes.push(
            "the target did not accept permessage-deflate: messages are sent uncompressed".into(),
        );
    }
    let neg = accepted.deflate;
    let mut exchange = Exchange::new(
        conn,
        Dir::C2s,
        neg.map(|n| n.client),
        neg.map(|n| n.server),
        opts,
        &mut report,
    );
    exchange.receiver.feed(&rest);
    exchange.received_bytes += rest.len() as u64;
    exchange.play(session);
    exchange.finish(session);
    Ok(report)
}

/// Plays the original server toward the next client that connects.
pub fn run_server(
    session: &LoadedSession,
    listener: &TcpListener,
    opts: &ReplayOptions,
) -> Result<Report, ReplayError> {
    let (stream, addr) = listener
        .accept()
        .map_err(|e| ReplayError::local(format!("accept: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut report = Report {
        mode: "server",
        raw: opts.raw,
        session: session.meta.id,
        peer: addr.to_string(),
        ..Default::default()
    };
    let mut conn = Conn::Plain(stream);
    conn.set_write_timeout(opts.timeout)
        .map_err(|e| ReplayError::local(format!("socket: {e}")))?;
    let (head, rest) = read_head(&mut conn, opts.limits.max_handshake_bytes, opts.timeout)?;
    let hello = match check_request(&head) {
        Ok(h) => h,
        Err(why) => {
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            conn.shutdown();
            return Err(ReplayError::peer(format!(
                "the client at {addr} did not send a WebSocket handshake: {why}"
            )));
        }
    };
    report.handshake.uri = hello.head.uri.clone();
    let (response, deflate): (Vec<u8>, Option<Negotiated>) = if opts.raw && opts.with_handshake {
        report.notes.push(
            "sent the recorded response.http verbatim: its Sec-WebSocket-Accept answers the recorded key, not this client's".into(),
        );
        let neg = handshake::check_response(&session.response, None)
            .ok()
            .and_then(|a| a.deflate);
        (session.response.clone(), neg)
    } else {
        let (bytes, proto, deflate) = build_server_response(&hello, &session.meta);
        if session.meta.subprotocol.is_some() && proto.is_none() {
            report.notes.push(format!(
                "the client did not offer the recorded subprotocol {:?}; none selected",
                session.meta.subprotocol.as_deref().unwrap_or_default()
            ));
        }
        if handshake::recorded_deflate(&session.meta).is_some() && deflate.is_none() {
            report.notes.push(
                "the client did not offer permessage-deflate: messages are sent uncompressed"
                    .into(),
            );
        }
        (bytes, deflate)
    };
    if let Ok(resp) = handshake::parse_response(&response) {
        report.handshake.status = resp.status;
        report.handshake.subprotocol = resp.get("sec-websocket-protocol").map(str::to_string);
        report.handshake.extensions = resp
            .all("sec-websocket-extensions")
            .map(str::to_string)
            .collect();
    }
    report.handshake.deflate = deflate.is_some();
    conn.write_all(&response)
        .and_then(|_| conn.flush())
        .map_err(|e| ReplayError::peer(format!("sending the 101 response: {e}")))?;
    let mut exchange = Exchange::new(
        conn,
        Dir::S2c,
        deflate.map(|n| n.server),
        deflate.map(|n| n.client),
        opts,
        &mut report,
    );
    exchange.receiver.feed(&rest);
    exchange.received_bytes += rest.len() as u64;
    exchange.play(session);
    exchange.finish(session);
    Ok(report)
}

/// The live part of a replay: our sends and the peer's messages.
struct Exchange<'a> {
    conn: Conn,
    ours: Dir,
    compressor: Option<Compressor>,
    receiver: Receiver,
    opts: &'a ReplayOptions,
    report: &'a mut Report,
    start: Instant,
    sent_close: bool,
    /// The connection can no longer be written (error or peer gone).
    send_broken: bool,
    eof: bool,
    sent_messages: u64,
    sent_bytes: u64,
    received_bytes: u64,
}

impl<'a> Exchange<'a> {
    fn new(
        conn: Conn,
        ours: Dir,
        our_deflate: Option<DirParams>,
        peer_deflate: Option<DirParams>,
        opts: &'a ReplayOptions,
        report: &'a mut Report,
    ) -> Self {
        Exchange {
            conn,
            ours,
            compressor: our_deflate.map(Compressor::new),
            receiver: Receiver::new(ours.other(), opts.limits.clone(), peer_deflate),
            opts,
            report,
            start: Instant::now(),
            sent_close: false,
            send_broken: false,
            eof: false,
            sent_messages: 0,
            sent_bytes: 0,
            received_bytes: 0,
        }
    }

    /// Reads whatever arrives within `wait` (at most [`POLL`]).
    fn pump(&mut self, wait: Duration) {
        if self.eof {
            std::thread::sleep(wait.min(POLL));
            return;
        }
        if self.conn.set_read_timeout(wait.min(POLL)).is_err() {
            self.eof = true;
            return;
        }
        let mut buf = [0u8; 16 * 1024];
        match self.conn.read(&mut buf) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.received_bytes += n as u64;
                self.receiver.feed(buf.get(..n).unwrap_or_default());
            }
            Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.report
                    .notes
                    .push(format!("reading from the peer failed: {e}"));
                self.eof = true;
            }
        }
    }

    /// Waits until `due` and, if `need` is set, until that many peer
    /// messages arrived (bounded by the timeout).
    fn wait_for(&mut self, due: Instant, need: Option<usize>, what: &str) {
        let wait_deadline = Instant::now() + self.opts.timeout;
        loop {
            let now = Instant::now();
            let have = self.receiver.messages().len();
            let count_ok = need.map_or(true, |n| have >= n);
            if now >= due && count_ok {
                return;
            }
            if !count_ok && (self.eof || now >= wait_deadline) {
                let why = if self.eof {
                    "the peer closed the connection"
                } else {
                    "timeout"
                };
                self.report.notes.push(format!(
                    "before {what}: waited for {} peer messages, {have} arrived ({why}); sending anyway",
                    need.unwrap_or(0)
                ));
                // Do not wait again for the same missing messages.
                if now < due {
                    self.sleep_pumping(due);
                }
                return;
            }
            let until = if count_ok { due } else { wait_deadline };
            self.pump(until.saturating_duration_since(now));
        }
    }

    fn sleep_pumping(&mut self, until: Instant) {
        while Instant::now() < until {
            self.pump(until.saturating_duration_since(Instant::now()));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if self.send_broken {
            return;
        }
        if let Err(e) = self.conn.write_all(bytes).and_then(|_| self.conn.flush()) {
            self.report
                .notes
                .push(format!("sending failed, nothing more sent: {e}"));
            self.send_broken = true;
            return;
        }
        self.sent_bytes += bytes.len() as u64;
    }

    fn play(&mut self, session: &LoadedSession) {
        if self.opts.raw {
            self.play_raw(session);
        } else {
            self.play_messages(session);
        }
    }

    fn play_messages(&mut self, session: &LoadedSession) {
        let steps = pacing::plan(session, self.ours, self.opts.speed);
        for step in steps {
            let Some(m) = session.messages.get(step.message) else {
                continue;
            };
            if self.sent_close {
                self.report.notes.push(format!(
                    "recorded {} message {} follows our close: not sent",
                    self.ours.as_str(),
                    m.index
                ));
                continue;
            }
            let need = self.opts.wait.then_some(step.after_peer);
            self.wait_for(
                self.start + step.at,
                need,
                &format!("{} message {}", self.ours.as_str(), m.index),
            );
            if self.send_broken {
                break;
            }
            let payload = if m.opcode == OP_CLOSE {
                match &m.close {
                    Some(c) => c
                        .code
                        .map(|code| close_payload(code, &c.reason))
                        .unwrap_or_default(),
                    None => m.payload.clone(),
                }
            } else {
                m.payload.clone()
            };
            if m.partial {
                self.report.notes.push(format!(
                    "recorded {} message {} is incomplete in the export; sent as recorded",
                    self.ours.as_str(),
                    m.index
                ));
            }
            let frame = self.frame(m.opcode, m.compressed, &payload);
            self.send(&frame);
            if !self.send_broken {
                self.sent_messages += 1;
                self.sent_close |= m.opcode == OP_CLOSE;
            }
        }
        if !self.sent_close && !self.send_broken {
            // The peer answering our close is how the exchange ends cleanly.
            self.report.notes.push(
                "the recording has no close from our side: sent close 1000 to end the exchange"
                    .into(),
            );
            let frame = self.frame(OP_CLOSE, false, &close_payload(1000, ""));
            self.send(&frame);
            self.sent_close = !self.send_broken;
        }
    }

    /// One frame of ours: masked when we are the client, compressed when the
    /// recording was and the peer accepted permessage-deflate.
    fn frame(&mut self, opcode: u8, compressed: bool, payload: &[u8]) -> Vec<u8> {
        let mask = (self.ours == Dir::C2s).then(rand::random::<[u8; 4]>);
        let mut out = Vec::with_capacity(payload.len() + 14);
        match self.compressor.as_mut() {
            Some(c) if compressed && !is_control(opcode) => {
                let z = c.compress(payload);
                encode_frame(&mut out, true, 4, opcode, mask, &z);
            }
            _ => encode_frame(&mut out, true, 0, opcode, mask, payload),
        }
        out
    }

    /// `--raw`: our recorded `.bin`, in chunks ending where recorded messages
    /// end, each sent at its message's time (all at once with speed 0).
    fn play_raw(&mut self, session: &LoadedSession) {
        let bin = session.bin(self.ours);
        let base = Some(session.meta.start);
        let mut sent_to = 0usize;
        let mut peer_seen = 0usize;
        for m in &session.messages {
            if m.dir != self.ours {
                peer_seen += 1;
                continue;
            }
            let end = usize::try_from(m.stream[1])
                .unwrap_or(usize::MAX)
                .min(bin.len());
            if end <= sent_to {
                continue;
            }
            let due = self.start + scaled(base, m.ts, self.opts.speed);
            let need = self.opts.wait.then_some(peer_seen);
            self.wait_for(
                due,
                need,
                &format!("{} bytes {sent_to}..{end}", self.ours.as_str()),
            );
            self.send(bin.get(sent_to..end).unwrap_or_default());
            if self.send_broken {
                return;
            }
            self.sent_messages += 1;
            self.sent_close |= m.opcode == OP_CLOSE;
            sent_to = end;
        }
        if sent_to < bin.len() {
            self.send(bin.get(sent_to..).unwrap_or_default());
        }
        // Whatever the bytes held, they were the whole recorded side.
        self.sent_close = true;
    }

    /// Collects the rest of the peer's messages (until its close, EOF, or
    /// the timeout), closes the connection and fills in the report.
    fn finish(mut self, session: &LoadedSession) {
        let deadline = Instant::now() + self.opts.timeout;
        let ended_by = loop {
            if self.receiver.peer_closed() && (self.sent_close || self.send_broken) {
                break "close_frame";
            }
            if self.eof {
                break "eof";
            }
            if Instant::now() >= deadline {
                break "timeout";
            }
            self.pump(deadline.saturating_duration_since(Instant::now()));
        };
        self.report.ended_by = ended_by.to_string();
        if ended_by == "timeout" {
            self.report.notes.push(format!(
                "the peer neither closed nor ended the connection within {:?} after our last message",
                self.opts.timeout
            ));
        }
        self.receiver.finish();
        self.conn.shutdown();
        let peer = self.ours.other();
        let expected: Vec<Expected<'_>> = session
            .of(peer)
            .map(|m| Expected {
                opcode: m.opcode,
                payload: &m.payload,
            })
            .collect();
        let partial_recorded = session.of(peer).filter(|m| m.partial).count();
        if partial_recorded > 0 {
            self.report.notes.push(format!(
                "{partial_recorded} recorded {} message(s) are incomplete in the export: they compare as recorded",
                peer.as_str()
            ));
        }
        self.report.comparison = compare(&expected, self.receiver.messages(), &self.opts.ignore);
        self.report.sent = Counts {
            messages: self.sent_messages,
            bytes: self.sent_bytes,
        };
        self.report.received = Counts {
            messages: self.receiver.messages().len() as u64,
            bytes: self.received_bytes,
        };
        self.report.anomalies = self
            .receiver
            .anomalies()
            .iter()
            .map(|a| AnomalyReport {
                name: a.name,
                detail: a.detail.clone(),
            })
            .collect();
    }
}
