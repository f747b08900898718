//! Per-connection HTTP/1.x tracking up to a WebSocket upgrade.

use super::body::{request_body, response_body, Body, BodyStep};
use super::handshake::{build, wants_upgrade, wants_websocket, Handshake};
use super::head::{
    is_http1_request_line, looks_like_request, parse_request, parse_response, HeadBuf, HeadError,
    HeadStep, Request, Response,
};
use crate::types::{Anomaly, PacketNo, Timestamp};
use std::collections::VecDeque;

/// Bytes of one side held back, with where they were in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes.
    pub data: Vec<u8>,
    /// Offset of the first byte in the side's TCP stream.
    pub stream_offset: u64,
    /// Packet that carried the first byte.
    pub packet: PacketNo,
    /// Time of that packet.
    pub ts: Timestamp,
}

/// Limits on what one connection's tracker holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request or response head (default 64 KiB): `http_head_too_large`.
    pub max_head_bytes: usize,
    /// Most header fields in one head (default 1024): `http_too_many_headers`.
    pub max_headers: usize,
    /// Client bytes held while an upgrade request waits for its response
    /// (default 1 MiB): `http_pending_client_overflow`.
    pub max_pending_client_bytes: usize,
    /// Requests waiting for responses (default 16): `http_too_many_pipelined`.
    pub max_pipelined: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 1024,
            max_pending_client_bytes: 1 << 20,
            max_pipelined: 16,
        }
    }
}

/// What [`HandshakeTracker::feed`] found.
#[derive(Debug)]
pub enum Feed {
    /// All of the data was HTTP (or is held); keep feeding.
    Continue,
    /// A WebSocket session starts. `rest`: how many bytes at the end of this
    /// feed's data follow the 101 head (they are server frames).
    /// `pending_client`: client bytes sent after the upgrade request (client
    /// frames sent before the 101), in order; a jump in `stream_offset`
    /// between chunks, or to the next client data, is lost data.
    Upgraded {
        /// The upgrade request and its 101 response.
        handshake: Box<Handshake>,
        /// Bytes at the end of this feed's data that follow the 101 head.
        rest: usize,
        /// Client bytes sent after the upgrade request, in stream order.
        pending_client: Vec<Chunk>,
    },
    /// Not (or no longer) HTTP that can lead to a WebSocket: stop feeding.
    NotHttp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No byte seen yet, or the first request line is still being sniffed.
    Start,
    Http,
    Upgraded,
    NotHttp,
}

#[derive(Clone, Copy, Debug)]
enum ClientState {
    Head,
    /// A request body; `then_hold`: it belongs to an upgrade request.
    Body {
        body: Body,
        then_hold: bool,
    },
    /// After an upgrade request: bytes are held until the response says what they are.
    Hold,
}

#[derive(Clone, Copy, Debug)]
enum ServerState {
    Head,
    Body(Body),
}

struct Pending {
    request: Request,
    websocket: bool,
    upgrade: bool,
    head_method: bool,
}

enum Step {
    Continue,
    Upgraded(Box<Handshake>, usize),
    GiveUp,
}

/// Follows one TCP connection's HTTP exchanges (both sides, in packet order)
/// until a WebSocket upgrade succeeds, or the connection turns out not to be
/// HTTP. Call [`drain_anomalies`](Self::drain_anomalies) after each feed.
pub struct HandshakeTracker {
    limits: HttpLimits,
    phase: Phase,
    client: Option<usize>,
    client_head: HeadBuf,
    server_head: HeadBuf,
    client_state: ClientState,
    server_state: ServerState,
    queue: VecDeque<Pending>,
    held: Vec<Chunk>,
    held_bytes: usize,
    held_dropped: u64,
    held_gap: bool,
    /// Client stream offset one past the last byte offered while holding
    /// (kept or dropped): where the dropped bytes, if any, end.
    held_end: u64,
    last: (PacketNo, Timestamp),
    anomalies: Vec<Anomaly>,
}

fn quote(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b.get(..40).unwrap_or(b)).into_owned();
    format!("{s:?}")
}

impl HandshakeTracker {
    /// A tracker for a new connection, bounded by `limits`.
    pub fn new(limits: HttpLimits) -> Self {
        HandshakeTracker {
            limits,
            phase: Phase::Start,
            client: None,
            client_head: HeadBuf::default(),
            server_head: HeadBuf::default(),
            client_state: ClientState::Head,
            server_state: ServerState::Head,
            queue: VecDeque::new(),
            held: Vec::new(),
            held_bytes: 0,
            held_dropped: 0,
            held_gap: false,
            held_end: 0,
            last: (0, Timestamp::default()),
            anomalies: Vec::new(),
        }
    }

    /// TCP side (0 or 1) that sends requests, once known.
    pub fn client_side(&self) -> Option<usize> {
        self.client
    }

    /// Feeds `data` from `side` (0 = TCP originator, 1 = responder; anything
    /// else counts as 1), starting at `stream_offset` of that side's stream.
    /// After `Upgraded` or `NotHttp`, further feeds are ignored.
    pub fn feed(
        &mut self,
        side: usize,
        data: &[u8],
        stream_offset: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) -> Feed {
        match self.phase {
            Phase::NotHttp => return Feed::NotHttp,
            Phase::Upgraded => return Feed::Continue,
            Phase::Start | Phase::Http => {}
        }
        if data.is_empty() {
            return Feed::Continue;
        }
        self.last = (packet, ts);
        let side = side.min(1);
        let client = *self.client.get_or_insert(side);
        let step = if side == client {
            self.client_bytes(data, stream_offset, packet, ts)
        } else {
            self.server_bytes(data, packet, ts)
        };
        match step {
            Step::Continue => Feed::Continue,
            Step::GiveUp => {
                self.phase = Phase::NotHttp;
                Feed::NotHttp
            }
            Step::Upgraded(handshake, rest) => {
                self.phase = Phase::Upgraded;
                Feed::Upgraded {
                    handshake,
                    rest,
                    pending_client: std::mem::take(&mut self.held),
                }
            }
        }
    }

    /// Bytes of `side` were lost at its current position. Parsing goes on only
    /// if that side was between messages (or its bytes are merely being held).
    pub fn gap(&mut self, side: usize) {
        if !matches!(self.phase, Phase::Start | Phase::Http) {
            return;
        }
        let side = side.min(1);
        let Some(client) = self.client else { return };
        let at_boundary = if side == client {
            match self.client_state {
                ClientState::Head => self.client_head.is_empty(),
                ClientState::Hold => {
                    self.held_gap = true;
                    true
                }
                ClientState::Body { .. } => false,
            }
        } else {
            match self.server_state {
                ServerState::Head => self.server_head.is_empty(),
                ServerState::Body(Body::UntilClose) => true,
                ServerState::Body(_) => false,
            }
        };
        if !at_boundary {
            let who = if side == client { "client" } else { "server" };
            self.give_up(
                "http_gap",
                format!("{who} bytes lost inside an HTTP message; HTTP parsing stops"),
            );
            self.phase = Phase::NotHttp;
        }
    }

    /// End of the connection: reports upgrade requests that never got a response.
    pub fn finish(&mut self) {
        if !matches!(self.phase, Phase::Start | Phase::Http) {
            return;
        }
        for p in std::mem::take(&mut self.queue)
            .into_iter()
            .filter(|p| p.websocket)
        {
            self.anomalies.push(Anomaly {
                name: "http_upgrade_unanswered",
                detail: format!(
                    "WebSocket upgrade request for {} got no response",
                    p.request.uri
                ),
                packet: p.request.packets.last().copied().unwrap_or(0),
                ts: p.request.ts,
            });
        }
        self.report_held_overflow();
    }

    /// Moves the anomalies recorded so far (not those of a handshake) to `out`.
    pub fn drain_anomalies(&mut self, out: &mut Vec<Anomaly>) {
        out.append(&mut self.anomalies);
    }

    fn note(&mut self, name: &'static str, detail: String) {
        let (packet, ts) = self.last;
        self.anomalies.push(Anomaly {
            name,
            detail,
            packet,
            ts,
        });
    }

    fn give_up(&mut self, name: &'static str, detail: String) -> Step {
        self.note(name, detail);
        Step::GiveUp
    }

    fn head_error(&mut self, e: HeadError, what: &str) -> Step {
        match e {
            HeadError::TooManyHeaders => self.give_up(
                "http_too_many_headers",
                format!(
                    "{what} head has more than {} headers; HTTP parsing stops",
                    self.limits.max_headers
                ),
            ),
            HeadError::Malformed(why) => self.give_up(
                "http_malformed",
                format!("{what}: {why}; HTTP parsing stops"),
            ),
        }
    }

    fn too_large(&mut self, what: &str) -> Step {
        let limit = self.limits.max_head_bytes;
        self.give_up(
            "http_head_too_large",
            format!("{what} head longer than {limit} bytes; HTTP parsing stops"),
        )
    }

    fn client_bytes(
        &mut self,
        data: &[u8],
        stream_offset: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) -> Step {
        let mut pos = 0usize;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            match &mut self.client_state {
                ClientState::Hold => {
                    self.hold(rest, stream_offset + pos as u64, packet, ts);
                    return Step::Continue;
                }
                ClientState::Body { body, then_hold } => match body.skip(rest) {
                    BodyStep::More => return Step::Continue,
                    BodyStep::Done { consumed } => {
                        pos += consumed;
                        self.client_state = if *then_hold {
                            ClientState::Hold
                        } else {
                            ClientState::Head
                        };
                    }
                    BodyStep::Malformed(e) => {
                        return self.give_up("http_malformed", format!("request body: {e}"))
                    }
                },
                ClientState::Head => {
                    if self.client_head.is_empty() {
                        // Stray line ends between requests are tolerated (RFC 9112 2.2).
                        let blank = rest
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        if blank > 0 {
                            pos += blank;
                            continue;
                        }
                    }
                    // Sniff before copying, so other protocols cost a few byte compares.
                    if self.client_head.is_empty() && looks_like_request(rest) == Some(false) {
                        return self.not_a_request(rest);
                    }
                    let step = self
                        .client_head
                        .push(rest, self.limits.max_head_bytes, packet, ts);
                    if looks_like_request(self.client_head.bytes()) == Some(false) {
                        let start = self
                            .client_head
                            .bytes()
                            .get(..40)
                            .unwrap_or_default()
                            .to_vec();
                        return self.not_a_request(&start);
                    }
                    match step {
                        HeadStep::NeedMore => return Step::Continue,
                        HeadStep::TooLarge => return self.too_large("request"),
                        HeadStep::Complete { consumed } => {
                            pos += consumed;
                            let first = self.phase == Phase::Start;
                            self.phase = Phase::Http;
                            let head = self.client_head.take();
                            // SIP, RTSP or the HTTP/2 preface look like a request line
                            // but are other protocols, not broken HTTP/1.
                            if first && !is_http1_request_line(&head.raw) {
                                return Step::GiveUp;
                            }
                            match parse_request(head, self.limits.max_headers) {
                                Ok(req) => {
                                    if let Step::GiveUp = self.on_request(req) {
                                        return Step::GiveUp;
                                    }
                                }
                                Err(e) => return self.head_error(e, "request"),
                            }
                        }
                    }
                }
            }
        }
        Step::Continue
    }

    /// The client's bytes are not a request line: on the first request that
    /// just means the connection is not HTTP; later, it is an anomaly.
    fn not_a_request(&mut self, start: &[u8]) -> Step {
        if self.phase == Phase::Start {
            return Step::GiveUp;
        }
        let start = quote(start);
        self.give_up(
            "http_malformed",
            format!("client sent {start} where a request was expected"),
        )
    }

    fn on_request(&mut self, request: Request) -> Step {
        if self.queue.len() >= self.limits.max_pipelined {
            let n = self.queue.len();
            return self.give_up(
                "http_too_many_pipelined",
                format!("{n} requests already wait for responses; HTTP parsing stops"),
            );
        }
        let body = match request_body(&request.headers) {
            Ok(b) => b,
            Err(e) => {
                return self.give_up("http_malformed", format!("request {}: {e}", request.uri))
            }
        };
        let upgrade = wants_upgrade(&request);
        self.client_state = match (body, upgrade) {
            (Body::None, true) => ClientState::Hold,
            (Body::None, false) => ClientState::Head,
            (body, then_hold) => ClientState::Body { body, then_hold },
        };
        self.queue.push_back(Pending {
            websocket: wants_websocket(&request),
            upgrade,
            head_method: request.method == "HEAD",
            request,
        });
        Step::Continue
    }

    fn hold(&mut self, data: &[u8], stream_offset: u64, packet: PacketNo, ts: Timestamp) {
        self.held_end = self.held_end.max(stream_offset + data.len() as u64);
        let take = data.len().min(
            self.limits
                .max_pending_client_bytes
                .saturating_sub(self.held_bytes),
        );
        if let Some(kept) = data.get(..take).filter(|k| !k.is_empty()) {
            self.held.push(Chunk {
                data: kept.to_vec(),
                stream_offset,
                packet,
                ts,
            });
            self.held_bytes += take;
        }
        self.held_dropped += (data.len() - take) as u64;
    }

    /// Client stream offset one past the last byte that arrived before the
    /// upgrade completed (0 when none was held): after `Upgraded`, bytes
    /// between the last pending chunk and this offset were dropped.
    pub fn held_end(&self) -> u64 {
        self.held_end
    }

    fn report_held_overflow(&mut self) {
        if self.held_dropped > 0 {
            let (n, limit) = (self.held_dropped, self.limits.max_pending_client_bytes);
            self.note(
                "http_pending_client_overflow",
                format!("{n} client bytes sent before the upgrade response were dropped (limit {limit} bytes)"),
            );
            self.held_dropped = 0;
        }
    }

    fn server_bytes(&mut self, data: &[u8], packet: PacketNo, ts: Timestamp) -> Step {
        let mut pos = 0usize;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            match &mut self.server_state {
                ServerState::Body(body) => match body.skip(rest) {
                    BodyStep::More => return Step::Continue,
                    BodyStep::Done { consumed } => {
                        pos += consumed;
                        self.server_state = ServerState::Head;
                    }
                    BodyStep::Malformed(e) => {
                        return self.give_up("http_malformed", format!("response body: {e}"))
                    }
                },
                ServerState::Head => {
                    if self.server_head.is_empty() {
                        let blank = rest
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        if blank > 0 {
                            pos += blank;
                            continue;
                        }
                        if self.queue.is_empty() {
                            let start = quote(rest);
                            let who = if self.phase == Phase::Start {
                                "before any request"
                            } else {
                                "with no request pending"
                            };
                            return self.give_up(
                                "http_unsolicited_response",
                                format!("server sent {start} {who}"),
                            );
                        }
                    }
                    let step = self
                        .server_head
                        .push(rest, self.limits.max_head_bytes, packet, ts);
                    let start = self.server_head.bytes();
                    let prefix_len = start.len().min(5);
                    if !b"HTTP/"
                        .get(..prefix_len)
                        .is_some_and(|p| start.get(..prefix_len) == Some(p))
                    {
                        let start = quote(start);
                        return self.give_up(
                            "http_malformed",
                            format!("server sent {start} where a response was expected"),
                        );
                    }
                    match step {
                        HeadStep::NeedMore => return Step::Continue,
                        HeadStep::TooLarge => return self.too_large("response"),
                        HeadStep::Complete { consumed } => {
                            pos += consumed;
                            let head = self.server_head.take();
                            let response = match parse_response(head, self.limits.max_headers) {
                                Ok(r) => r,
                                Err(e) => return self.head_error(e, "response"),
                            };
                            match self.on_response(response, data.len() - pos) {
                                Step::Continue => {}
                                other => return other,
                            }
                        }
                    }
                }
            }
        }
        Step::Continue
    }

    fn on_response(&mut self, response: Response, rest: usize) -> Step {
        if (100..200).contains(&response.status) && response.status != 101 {
            // Informational: the final response is still to come.
            return Step::Continue;
        }
        let Some(pending) = self.queue.pop_front() else {
            return self.give_up(
                "http_unsolicited_response",
                format!("{} response with no request pending", response.status),
            );
        };
        let packet = response.packets.last().copied().unwrap_or(0);
        if response.status == 101 {
            if !pending.websocket {
                let to = quote(response.header("upgrade").unwrap_or_default());
                return self.give_up(
                    "http_upgrade_other_protocol",
                    format!("connection switched to {to}, not WebSocket"),
                );
            }
            self.report_held_overflow();
            let client = self.client.unwrap_or(0);
            return Step::Upgraded(Box::new(build(pending.request, response, client)), rest);
        }
        if pending.websocket {
            let reason = response.reason.clone();
            self.anomalies.push(Anomaly {
                name: "http_upgrade_refused",
                detail: format!(
                    "WebSocket upgrade for {} answered {} {reason}",
                    pending.request.uri, response.status
                ),
                packet,
                ts: response.ts,
            });
        }
        match response_body(response.status, &response.headers, pending.head_method) {
            Ok(Body::None) => {}
            Ok(body) => self.server_state = ServerState::Body(body),
            Err(e) => {
                return self.give_up(
                    "http_malformed",
                    format!("{} response: {e}", response.status),
                )
            }
        }
        if pending.upgrade {
            return self.release_held();
        }
        Step::Continue
    }

    /// The upgrade was refused: the held client bytes are HTTP after all.
    fn release_held(&mut self) -> Step {
        match &mut self.client_state {
            ClientState::Hold => self.client_state = ClientState::Head,
            ClientState::Body { then_hold, .. } => *then_hold = false,
            ClientState::Head => {}
        }
        if self.held_dropped > 0 || self.held_gap {
            self.report_held_overflow();
            return self.give_up(
                "http_gap",
                "client bytes held during a refused upgrade are incomplete; HTTP parsing stops"
                    .into(),
            );
        }
        self.held_bytes = 0;
        for chunk in std::mem::take(&mut self.held) {
            if let Step::GiveUp =
                self.client_bytes(&chunk.data, chunk.stream_offset, chunk.packet, chunk.ts)
            {
                return Step::GiveUp;
            }
        }
        Step::Continue
    }
}
