//! Wires the stages together for one run: packets in, records out.
//!
//! [`Analyzer`] owns the decoder and the flow table; per TCP connection it
//! keeps a [`Conn`]: first an HTTP handshake tracker, then, once a `101`
//! answers an upgrade request, a WebSocket session with a frame decoder and
//! a message assembler per direction. Every record goes to one [`Sink`], in
//! the order the packets revealed it, so output is deterministic.

use crate::capture::{Notice, Packet};
use crate::decode::{DecodeConfig, Decoder};
use crate::http::{Feed, Handshake, HandshakeTracker, HttpLimits};
use crate::message::{self, Assembler, MessageConfig, Output};
use crate::session::{
    AnomalyRecord, CloseRecord, DeflateRecord, GapRecord, PerDir, RequestRecord, ResponseRecord,
    SessionEndRecord, SessionRecord, StatsRecord,
};
use crate::sink::{FrameView, MessageView, SessionView, Sink};
use crate::tcp::{
    CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, Side, StreamEvent, TcpConfig,
};
use crate::types::{Anomaly, Dir, PacketNo, Timestamp};
use crate::ws::{FrameConfig, FrameDecoder, FrameEvent};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

/// Every limit and policy of a run.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub decode: DecodeConfig,
    pub tcp: TcpConfig,
    pub http: HttpLimits,
    pub message: MessageConfig,
}

/// Maps global packet ordinals back to (input file, packet number in it).
#[derive(Clone, Debug, Default)]
pub struct FileMap {
    /// Global ordinal of the packet before each file's first packet.
    bases: Vec<u64>,
}

impl FileMap {
    /// The input index and its 1-based packet number.
    pub fn local(&self, global: PacketNo) -> (usize, u64) {
        let i = self
            .bases
            .partition_point(|&b| b < global)
            .saturating_sub(1);
        (i, global - self.bases.get(i).copied().unwrap_or(0))
    }
    fn multi(&self) -> bool {
        self.bases.len() > 1
    }
}

/// Per-connection state.
pub enum Conn {
    Http(Box<HandshakeTracker>),
    Ws(Box<WsSession>),
    Ignored,
}

/// A WebSocket session in progress.
pub struct WsSession {
    id: u64,
    client_side: usize,
    dirs: [DirState; 2],
    counts: SessionCounts,
    /// FIN seen, per TCP side (for ending the session at the close).
    fins: [bool; 2],
}

#[derive(Default)]
struct SessionCounts {
    anomalies: u64,
    anomalies_by_name: BTreeMap<&'static str, u64>,
    gaps: u64,
    gap_bytes: u64,
    messages: PerDir,
    bytes: PerDir,
    wire_bytes: PerDir,
    stream_bytes: PerDir,
    close: [Option<CloseRecord>; 2],
    last_ts: Timestamp,
}

struct DirState {
    dec: FrameDecoder,
    asm: Assembler,
    /// TCP stream offset where this direction's WebSocket bytes start.
    base: Option<u64>,
    /// TCP sequence number of TCP stream offset 0 (ISN + 1), once known.
    tcp_seq_base: Option<u32>,
    /// TCP stream offset one past the last byte seen (data or gap).
    next: Option<u64>,
    desynced: bool,
}

impl DirState {
    /// TCP sequence number of WebSocket stream offset 0 (0 while unknown).
    fn seq0(&self) -> u32 {
        let base = self.base.unwrap_or(0);
        self.tcp_seq_base.unwrap_or(0).wrapping_add(base as u32)
    }

    fn new(dir: Dir, cfg: &MessageConfig, deflate: Option<message::DeflateParams>) -> Self {
        DirState {
            dec: FrameDecoder::new(FrameConfig {
                expect_masked: dir == Dir::C2s,
            }),
            asm: Assembler::new(dir, cfg.clone(), deflate),
            base: None,
            tcp_seq_base: None,
            next: None,
            desynced: false,
        }
    }
}

#[derive(Default)]
struct Counters {
    packets: u64,
    bytes: u64,
    skipped: BTreeMap<&'static str, u64>,
    sessions: u64,
    messages: BTreeMap<&'static str, u64>,
    gaps: u64,
    gap_bytes: u64,
    anomalies: BTreeMap<&'static str, u64>,
}

struct Handler<S: Sink> {
    sink: S,
    cfg: Config,
    files: FileMap,
    counters: Counters,
    err: Option<io::Error>,
    want_streams: bool,
    want_frames: bool,
    scratch_packets: Vec<u64>,
    scratch_frames: Vec<FrameView>,
    /// End a session (record and memory) as soon as TCP has closed it (FIN
    /// both ways, or RST) rather than when the flow leaves the table.
    end_at_close: bool,
}

/// One run of the analysis.
pub struct Analyzer<S: Sink> {
    decoder: Decoder,
    flows: FlowTable<Conn>,
    h: Handler<S>,
    global: PacketNo,
    decode_events: Vec<crate::decode::DecodeEvent>,
    notices: Vec<Notice>,
}

/// How often (packets) a file run reports progress.
pub(crate) const PROGRESS_PACKETS: u64 = 4096;

impl<S: Sink> Analyzer<S> {
    pub fn new(cfg: Config, sink: S) -> Self {
        let want_streams = sink.wants_streams();
        let want_frames = sink.wants_frames();
        let mut cfg = cfg;
        cfg.message.keep_frames = cfg.message.keep_frames || want_frames;
        cfg.message.keep_payloads = cfg.message.keep_payloads && sink.wants_payloads();
        Analyzer {
            decoder: Decoder::new(cfg.decode.clone()),
            flows: FlowTable::new(cfg.tcp.clone()),
            h: Handler {
                sink,
                cfg,
                files: FileMap::default(),
                counters: Counters::default(),
                err: None,
                want_streams,
                want_frames,
                scratch_packets: Vec::new(),
                scratch_frames: Vec::new(),
                end_at_close: false,
            },
            global: 0,
            decode_events: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// For live capture: end each WebSocket session (its `session_end`
    /// record, its decoder and inflater memory) as soon as TCP has closed it,
    /// FIN both ways or RST, instead of when the closed flow leaves the table
    /// (`timeout_closed_secs` of packet time later, to absorb
    /// retransmissions). Packets of the flow after that are no longer
    /// analysed. Off by default, so reading a file gives the same records in
    /// the same order as before.
    pub fn end_sessions_at_close(&mut self, on: bool) {
        self.h.end_at_close = on;
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.h.sink
    }

    /// Packets from here on belong to the next input file.
    pub fn begin_file(&mut self) {
        self.h.files.bases.push(self.global);
    }

    /// Analyses one packet. Errors are the sink's (a failed write).
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        self.packet_with(pkt, |flows, h, seg, packet| {
            flows.process(seg, packet, pkt.ts, h)
        })
    }

    /// Like [`Analyzer::packet`], but the decoded segment goes to `route`
    /// instead of this analyzer's flow table (the reader of a sharded run).
    pub fn packet_routed(
        &mut self,
        pkt: &Packet<'_>,
        route: &mut dyn FnMut(&crate::decode::Segment<'_>, PacketNo),
    ) -> io::Result<()> {
        self.packet_with(pkt, |_, _, seg, packet| route(seg, packet))
    }

    /// Counts and decodes one packet, hands its segment to `then`, and
    /// reports the decoder's events.
    fn packet_with(
        &mut self,
        pkt: &Packet<'_>,
        then: impl FnOnce(&mut FlowTable<Conn>, &mut Handler<S>, &crate::decode::Segment<'_>, PacketNo),
    ) -> io::Result<()> {
        if self.h.files.bases.is_empty() {
            self.h.files.bases.push(0);
        }
        self.global += 1;
        let packet = self.global;
        self.h.counters.packets += 1;
        self.h.counters.bytes += pkt.data.len() as u64;
        match self
            .decoder
            .decode(pkt.link_type, pkt.data, pkt.orig_len, pkt.ts)
        {
            Ok(seg) => then(&mut self.flows, &mut self.h, &seg, packet),
            Err(reason) => *self.h.counters.skipped.entry(reason.name()).or_default() += 1,
        }
        self.decoder_events(packet, pkt.ts);
        match self.h.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// IP-layer oddities (fragment overlaps, expiries) as anomalies.
    fn decoder_events(&mut self, packet: PacketNo, ts: Timestamp) {
        self.decoder.drain_events(&mut self.decode_events);
        for ev in std::mem::take(&mut self.decode_events) {
            let a = Anomaly {
                name: ev.name,
                detail: ev.detail,
                packet,
                ts,
            };
            *self.h.counters.anomalies.entry(a.name).or_default() += 1;
            let rec = AnomalyRecord {
                name: a.name.to_owned(),
                session: None,
                flow: None,
                dir: None,
                packet: (packet > 0).then(|| self.h.files.local(packet).1),
                ts: (packet > 0).then(|| ts.rfc3339()),
                detail: a.detail,
                file: None,
            };
            let r = self.h.sink.anomaly(&rec);
            self.h.fail(r);
        }
    }

    /// Reports the notices `reader` holds (see [`Analyzer::notice`]).
    pub fn notices_from(&mut self, reader: &mut crate::capture::CaptureReader) -> io::Result<()> {
        let mut held = std::mem::take(&mut self.notices);
        reader.drain_notices(&mut held);
        let mut r = Ok(());
        for nt in held.drain(..) {
            if r.is_ok() {
                r = self.notice(&nt);
            }
        }
        self.notices = held;
        r
    }

    /// A non-fatal oddity of the capture file itself.
    pub fn notice(&mut self, n: &Notice) -> io::Result<()> {
        let packet = if n.packet > 0 {
            Some(*self.h.files.bases.last().unwrap_or(&0) + n.packet)
        } else {
            None
        };
        let rec = AnomalyRecord {
            name: n.name.to_owned(),
            session: None,
            flow: None,
            dir: None,
            packet: packet.map(|p| self.h.files.local(p).1),
            ts: None,
            detail: format!("{} (byte offset {})", n.detail, n.offset),
            file: self.h.files.multi().then(|| self.h.files.bases.len() - 1),
        };
        *self.h.counters.anomalies.entry(n.name).or_default() += 1;
        self.h.sink.anomaly(&rec)
    }

    /// A segment decoded elsewhere (a shard of a sharded run), as packet
    /// `packet` (global number) would have delivered it.
    pub fn segment(
        &mut self,
        seg: &crate::decode::Segment<'_>,
        packet: PacketNo,
        ts: Timestamp,
    ) -> io::Result<()> {
        self.flows.process(seg, packet, ts, &mut self.h);
        match self.h.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Moves packet time forward (timing out idle flows, see
    /// [`FlowTable::advance_clock`]).
    pub fn advance_clock(&mut self, ts: Timestamp) -> io::Result<()> {
        self.flows.advance_clock(ts, &mut self.h);
        match self.h.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records flow-table levels for a sharded run's exact peaks (see
    /// [`FlowTable::take_level`]).
    pub fn trace_levels(&mut self) {
        self.flows.trace_levels();
    }

    /// The flow table's level since the last call ([`FlowTable::take_level`]).
    pub fn take_level(&mut self) -> crate::tcp::Level {
        self.flows.take_level()
    }

    /// The levels after flows closed in order ([`FlowTable::take_close_levels`]).
    pub fn take_close_levels(&mut self, into: &mut Vec<(u8, PacketNo, crate::tcp::Level)>) {
        self.flows.take_close_levels(into);
    }

    /// Sessions found so far (for progress reports).
    pub fn sessions(&self) -> u64 {
        self.h.counters.sessions
    }

    /// Packets after global number `base` belong to the next input file
    /// (a shard of a sharded run, which does not see every packet).
    pub fn begin_file_at(&mut self, base: PacketNo) {
        self.h.files.bases.push(base);
    }

    /// End of input: IP fragments left over, then every flow, oldest first.
    pub fn end_of_input(&mut self) -> io::Result<()> {
        self.decoder.finish();
        self.decoder_events(0, Timestamp::default());
        self.flows.finish(&mut self.h);
        match self.h.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// End of input: flush every flow, write the statistics.
    pub fn finish(mut self) -> io::Result<(S, StatsRecord)> {
        self.end_of_input()?;
        let stats = self.stats();
        self.h.sink.stats(&stats)?;
        self.h.sink.finish()?;
        Ok((self.h.sink, stats))
    }

    /// Statistics so far.
    pub fn stats(&self) -> StatsRecord {
        let c = &self.h.counters;
        let own =
            |m: &BTreeMap<&'static str, u64>| m.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let t = self.flows.stats();
        let mut counters = BTreeMap::new();
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(t) {
            for (k, v) in m {
                if let Some(v) = v.as_u64() {
                    counters.insert(format!("tcp_{k}"), v);
                }
            }
        }
        let d = self.decoder.stats();
        for (k, v) in [
            ("decode_snaplen_cut", d.snaplen_cut),
            (
                "decode_ip_length_exceeds_packet",
                d.ip_length_exceeds_packet,
            ),
            ("decode_fragments", d.fragments),
            ("decode_datagrams_reassembled", d.datagrams_reassembled),
            ("decode_datagrams_expired", d.datagrams_expired),
            ("decode_datagrams_evicted", d.datagrams_evicted),
            (
                "decode_datagrams_incomplete_at_end",
                d.datagrams_incomplete_at_end,
            ),
            (
                "decode_fragment_overlap_conflicts",
                d.fragment_overlap_conflicts,
            ),
        ] {
            counters.insert(k.to_owned(), v);
        }
        StatsRecord {
            packets: c.packets,
            bytes: c.bytes,
            skipped: own(&c.skipped),
            flows: t.flows_created,
            sessions: c.sessions,
            messages: own(&c.messages),
            gaps: c.gaps,
            gap_bytes: c.gap_bytes,
            anomalies: own(&c.anomalies),
            counters,
        }
    }
}

fn side_index(s: Side) -> usize {
    match s {
        Side::Orig => 0,
        Side::Resp => 1,
    }
}

fn addr(a: &SocketAddr) -> String {
    a.to_string()
}

impl<S: Sink> Handler<S> {
    fn fail(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if self.err.is_none() {
                self.err = Some(e);
            }
        }
    }

    fn anomaly_record(
        &mut self,
        a: &Anomaly,
        session: Option<u64>,
        flow: u64,
        dir: Option<Dir>,
    ) -> AnomalyRecord {
        *self.counters.anomalies.entry(a.name).or_default() += 1;
        let (file, packet) = if a.packet > 0 {
            let (f, p) = self.files.local(a.packet);
            (Some(f), Some(p))
        } else {
            (None, None)
        };
        AnomalyRecord {
            name: a.name.to_owned(),
            session,
            flow: Some(flow),
            dir: dir.map(|d| d.as_str().to_owned()),
            packet,
            ts: (a.ts != Timestamp::default()).then(|| a.ts.rfc3339()),
            detail: a.detail.clone(),
            file: if self.files.multi() { file } else { None },
        }
    }

    fn emit_anomaly(&mut self, a: &Anomaly, session: Option<u64>, flow: u64, dir: Option<Dir>) {
        let rec = self.anomaly_record(a, session, flow, dir);
        let r = self.sink.anomaly(&rec);
        self.fail(r);
    }

    fn local_packets(&mut self, packets: &[u64]) -> Vec<u64> {
        packets.iter().map(|&p| self.files.local(p).1).collect()
    }

    /// A new session; its id is the global number of the packet that
    /// completed the 101 response, which no other session can share and
    /// which does not depend on how flows are spread over threads.
    fn start_session(
        &mut self,
        info: &FlowInfo,
        hs: Box<Handshake>,
        packet: PacketNo,
    ) -> Box<WsSession> {
        let id = packet;
        self.counters.sessions += 1;
        let client_side = hs.client_side.min(1);
        let (client, server) = if client_side == 0 {
            (info.orig, info.resp)
        } else {
            (info.resp, info.orig)
        };
        let req = &hs.request;
        let resp = &hs.response;
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let header_pairs = |hs: &[crate::http::Header]| -> Vec<(String, String)> {
            hs.iter()
                .map(|h| (h.name.clone(), lossy(&h.value)))
                .collect()
        };
        let ext_params: Vec<message::Extension> = hs
            .extensions
            .iter()
            .map(|e| (e.name.clone(), e.params.clone()))
            .collect();
        let extensions: Vec<String> = hs
            .extensions
            .iter()
            .map(|e| {
                let mut s = e.name.clone();
                for (k, v) in &e.params {
                    s.push_str("; ");
                    s.push_str(k);
                    if let Some(v) = v {
                        s.push('=');
                        s.push_str(v);
                    }
                }
                s
            })
            .collect();
        let mut deflate = [None, None];
        let mut param_anomalies = Vec::new();
        for dir in [Dir::C2s, Dir::S2c] {
            let (p, an) = message::deflate_params(&ext_params, dir);
            deflate[dir.index()] = p;
            // Each call reports the faults of its own direction's parameters
            // (shared faults only for C2s), so keeping both reports each once.
            param_anomalies.extend(an);
        }
        let deflate_rec = |p: &Option<message::DeflateParams>| {
            p.as_ref().map(|p| DeflateRecord {
                no_context_takeover: p.no_context_takeover,
                max_window_bits: p.max_window_bits,
                per_frame: p.per_frame,
            })
        };
        let (file, _) = self.files.local(req.packets.first().copied().unwrap_or(0));
        let version = |v: u8| format!("HTTP/1.{v}");
        let record = SessionRecord {
            id,
            ts: resp.ts.rfc3339(),
            client: addr(&client),
            server: addr(&server),
            uri: req.uri.clone(),
            host: req.header("host").map(lossy),
            origin: req.header("origin").map(lossy),
            subprotocol: hs.subprotocol.clone(),
            extensions,
            deflate_c2s: deflate_rec(&deflate[0]),
            deflate_s2c: deflate_rec(&deflate[1]),
            request: RequestRecord {
                method: req.method.clone(),
                uri: req.uri.clone(),
                version: version(req.version),
                headers: header_pairs(&req.headers),
                packets: self.local_packets(&req.packets),
            },
            response: ResponseRecord {
                status: resp.status,
                reason: resp.reason.clone(),
                version: version(resp.version),
                headers: header_pairs(&resp.headers),
                packets: self.local_packets(&resp.packets),
            },
            file: self.files.multi().then_some(file),
        };
        let r = self.sink.session(&SessionView {
            record: &record,
            raw_request: &req.raw,
            raw_response: &resp.raw,
        });
        self.fail(r);
        let mut sess = Box::new(WsSession {
            id,
            client_side,
            fins: [false; 2],
            dirs: [
                DirState::new(Dir::C2s, &self.cfg.message, deflate[0].take()),
                DirState::new(Dir::S2c, &self.cfg.message, deflate[1].take()),
            ],
            counts: SessionCounts {
                last_ts: resp.ts,
                ..Default::default()
            },
        });
        for a in &hs.anomalies {
            sess.counts.anomalies += 1;
            *sess.counts.anomalies_by_name.entry(a.name).or_default() += 1;
            self.emit_anomaly(a, Some(id), info.first_packet, None);
        }
        for (name, detail) in param_anomalies {
            let a = Anomaly {
                name,
                detail,
                packet: resp.packets.last().copied().unwrap_or(0),
                ts: resp.ts,
            };
            sess.counts.anomalies += 1;
            *sess.counts.anomalies_by_name.entry(a.name).or_default() += 1;
            self.emit_anomaly(&a, Some(id), info.first_packet, None);
        }
        sess
    }

    /// WebSocket bytes of one direction, in stream order.
    #[allow(clippy::too_many_arguments)]
    fn ws_data(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        tcp_offset: u64,
        seq: Option<u32>,
        data: &[u8],
        packet: PacketNo,
        ts: Timestamp,
    ) {
        let d = dir.index();
        if let Some(next) = sess.dirs[d].next {
            // Bytes dropped before they reached us (held client bytes over
            // their limit): the same as a TCP gap for the decoder.
            if tcp_offset > next {
                self.dropped_gap(sess, flow, dir, tcp_offset, packet, ts);
            }
        }
        let ds = &mut sess.dirs[d];
        ds.base.get_or_insert(tcp_offset);
        if let (None, Some(seq)) = (ds.tcp_seq_base, seq) {
            ds.tcp_seq_base = Some(seq.wrapping_sub(tcp_offset as u32));
        }
        let base = ds.base.unwrap_or(tcp_offset);
        ds.next = Some(tcp_offset + data.len() as u64);
        let off = tcp_offset.saturating_sub(base);
        sess.counts.add_stream(dir, data.len() as u64);
        sess.counts.last_ts = ts;
        if self.want_streams {
            let r = self.sink.stream(sess.id, dir, data);
            self.fail(r);
        }
        if sess.dirs[d].desynced {
            return;
        }
        let id = sess.id;
        let seq0 = sess.dirs[d].seq0();
        let WsSession { dirs, counts, .. } = sess;
        let DirState { dec, asm, .. } = &mut dirs[d];
        let mut em = Emitter {
            h: self,
            counts,
            id,
            flow,
            dir,
            seq0,
        };
        dec.feed(data, off, packet, ts, &mut |fev| match fev {
            FrameEvent::Anomaly(a) => em.anomaly(&a),
            other => asm.on_event(other, &mut |out| em.output(out)),
        });
        if dec.is_desynced() {
            dirs[d].desynced = true;
        }
    }

    /// Bytes that never reached the session up to `upto` (held client bytes
    /// dropped over their limit): reported like a TCP gap (record and stats)
    /// so stats and session_end agree and no lost byte goes unlisted.
    fn dropped_gap(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        upto: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) {
        let ds = &sess.dirs[dir.index()];
        let Some(next) = ds.next.filter(|&n| n < upto) else {
            return;
        };
        let len = upto - next;
        self.counters.gaps += 1;
        self.counters.gap_bytes += len;
        let rec = GapRecord {
            session: Some(sess.id),
            flow,
            dir: Some(dir.as_str().to_owned()),
            seq: ds.tcp_seq_base.unwrap_or(0).wrapping_add(next as u32),
            offset: next,
            len,
            reason: "buffer_limit".to_owned(),
            packet: (packet > 0).then(|| self.files.local(packet).1),
            ts: Some(ts.rfc3339()),
        };
        let r = self.sink.gap(&rec);
        self.fail(r);
        self.ws_gap(sess, flow, dir, next, len, packet, ts);
    }

    #[allow(clippy::too_many_arguments)]
    fn ws_gap(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        tcp_offset: u64,
        len: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) {
        let d = dir.index();
        let base = *sess.dirs[d].base.get_or_insert(tcp_offset);
        sess.dirs[d].next = Some(tcp_offset + len);
        let off = tcp_offset.saturating_sub(base);
        sess.counts.gaps += 1;
        sess.counts.gap_bytes += len;
        if self.want_streams {
            let r = self.sink.stream_gap(sess.id, dir, off, len);
            self.fail(r);
        }
        if sess.dirs[d].desynced {
            return;
        }
        let id = sess.id;
        let seq0 = sess.dirs[d].seq0();
        let WsSession { dirs, counts, .. } = sess;
        let DirState { dec, asm, .. } = &mut dirs[d];
        let mut em = Emitter {
            h: self,
            counts,
            id,
            flow,
            dir,
            seq0,
        };
        let in_sync = dec.gap(len, packet, ts, &mut |fev| match fev {
            FrameEvent::Anomaly(a) => em.anomaly(&a),
            other => asm.on_event(other, &mut |out| em.output(out)),
        });
        asm.context_lost(packet, ts);
        if !in_sync {
            dirs[d].desynced = true;
        }
    }

    /// Ends the session in `st` now (see `Analyzer::end_sessions_at_close`);
    /// the flow stays in the table, ignored, to absorb late packets.
    fn end_session_now(&mut self, st: &mut Conn, info: &FlowInfo, reason: CloseReason) -> Interest {
        if let Conn::Ws(sess) = std::mem::replace(st, Conn::Ignored) {
            self.end_session(sess, info, &reason);
        }
        Interest::Ignore
    }

    fn end_session(&mut self, mut sess: Box<WsSession>, info: &FlowInfo, reason: &CloseReason) {
        let id = sess.id;
        for dir in [Dir::C2s, Dir::S2c] {
            let ts = sess.counts.last_ts;
            let WsSession { dirs, counts, .. } = &mut *sess;
            let seq0 = dirs[dir.index()].seq0();
            let asm = &mut dirs[dir.index()].asm;
            let mut em = Emitter {
                h: self,
                counts,
                id,
                flow: info.first_packet,
                dir,
                seq0,
            };
            asm.finish(0, ts, &mut |out| em.output(out));
        }
        let c = &sess.counts;
        let clean = c.close[0].is_some()
            && c.close[1].is_some()
            && c.gaps == 0
            && matches!(reason, CloseReason::Fin);
        let rec = SessionEndRecord {
            session: id,
            ts: c.last_ts.rfc3339(),
            reason: reason.name().to_owned(),
            messages: c.messages,
            bytes: c.bytes,
            wire_bytes: c.wire_bytes,
            stream_bytes: c.stream_bytes,
            close_c2s: c.close[0].clone(),
            close_s2c: c.close[1].clone(),
            gaps: c.gaps,
            gap_bytes: c.gap_bytes,
            anomalies: c.anomalies,
            incomplete: !clean,
        };
        let r = self.sink.session_end(&rec);
        self.fail(r);
    }
}

impl SessionCounts {
    fn add_stream(&mut self, dir: Dir, n: u64) {
        match dir {
            Dir::C2s => self.stream_bytes.c2s += n,
            Dir::S2c => self.stream_bytes.s2c += n,
        }
    }
}

fn bump(p: &mut PerDir, dir: Dir, n: u64) {
    match dir {
        Dir::C2s => p.c2s += n,
        Dir::S2c => p.s2c += n,
    }
}

/// Turns message-stage output into sink records for one direction.
struct Emitter<'a, S: Sink> {
    h: &'a mut Handler<S>,
    counts: &'a mut SessionCounts,
    id: u64,
    flow: u64,
    dir: Dir,
    seq0: u32,
}

impl<S: Sink> Emitter<'_, S> {
    fn anomaly(&mut self, a: &Anomaly) {
        self.counts.anomalies += 1;
        *self.counts.anomalies_by_name.entry(a.name).or_default() += 1;
        self.h
            .emit_anomaly(a, Some(self.id), self.flow, Some(self.dir));
    }

    fn output(&mut self, out: Output<'_>) {
        match out {
            Output::Anomaly(a) => self.anomaly(&a),
            Output::Message(m) => {
                let h = &mut *self.h;
                *h.counters
                    .messages
                    .entry(crate::session::opcode_name(m.opcode))
                    .or_default() += 1;
                bump(&mut self.counts.messages, self.dir, 1);
                bump(&mut self.counts.bytes, self.dir, m.len);
                bump(&mut self.counts.wire_bytes, self.dir, m.wire_len);
                let close = m.close.as_ref().map(|c| (c.code, c.reason.as_str()));
                if let Some(c) = &m.close {
                    self.counts.close[self.dir.index()] = Some(CloseRecord {
                        code: c.code,
                        reason: c.reason.clone(),
                    });
                }
                let first = m.packets.first().copied().unwrap_or(0);
                let (file, _) = h.files.local(first);
                h.scratch_packets.clear();
                for &p in m.packets {
                    let local = h.files.local(p).1;
                    h.scratch_packets.push(local);
                }
                h.scratch_frames.clear();
                if h.want_frames {
                    for f in m.frames {
                        h.scratch_frames.push(FrameView {
                            fin: f.fin,
                            rsv: f.rsv,
                            opcode: f.opcode,
                            mask: f.mask,
                            payload_len: f.payload_len,
                            wire_len: f.wire_len,
                            offset: f.offset,
                            packets: f.packets.iter().map(|&p| h.files.local(p).1).collect(),
                        });
                    }
                }
                let view = MessageView {
                    session: self.id,
                    dir: self.dir,
                    index: m.index,
                    opcode: m.opcode,
                    payload: m.payload,
                    len: m.len,
                    is_text: m.opcode == crate::ws::opcode::TEXT && m.utf8_valid != Some(false),
                    ts: m.first_ts,
                    ts_last: m.last_ts,
                    packets: &h.scratch_packets,
                    file: h.files.multi().then_some(file),
                    seq: [
                        self.seq0.wrapping_add(m.stream_start as u32),
                        self.seq0.wrapping_add(m.stream_end as u32),
                    ],
                    stream: [m.stream_start, m.stream_end],
                    frames: m.frames.len().max(1) as u64,
                    compressed: m.compressed,
                    wire_len: m.wire_len,
                    truncated: m.truncated,
                    incomplete: m.incomplete,
                    inflate_failed: m.inflate_failed,
                    close,
                    frame_detail: &h.scratch_frames,
                };
                let r = h.sink.message(&view);
                h.fail(r);
            }
        }
    }
}

impl<S: Sink> FlowHandler for Handler<S> {
    type State = Conn;

    fn open(&mut self, _info: &FlowInfo) -> Conn {
        Conn::Http(Box::new(HandshakeTracker::new(self.cfg.http)))
    }

    /// The boxed tracker `open` makes, with the allocator's chunk header.
    fn state_heap(&self) -> usize {
        std::mem::size_of::<HandshakeTracker>() + 16
    }

    fn event(&mut self, st: &mut Conn, info: &FlowInfo, ev: StreamEvent<'_>) -> Interest {
        match st {
            Conn::Ignored => Interest::Ignore,
            Conn::Http(tracker) => {
                let interest = match ev {
                    StreamEvent::Data {
                        side,
                        offset,
                        seq,
                        data,
                        packet,
                        ts,
                    } => {
                        let s = side_index(side);
                        match tracker.feed(s, data, offset, packet, ts) {
                            Feed::Continue => Interest::Continue,
                            Feed::NotHttp => {
                                // The reason it gave up (head too large, too
                                // many headers, malformed) must not vanish.
                                let mut anomalies = Vec::new();
                                tracker.drain_anomalies(&mut anomalies);
                                for a in &anomalies {
                                    self.emit_anomaly(a, None, info.first_packet, None);
                                }
                                *st = Conn::Ignored;
                                return Interest::Ignore;
                            }
                            Feed::Upgraded {
                                handshake,
                                rest,
                                pending_client,
                            } => {
                                let mut anomalies = Vec::new();
                                tracker.drain_anomalies(&mut anomalies);
                                for a in &anomalies {
                                    self.emit_anomaly(a, None, info.first_packet, None);
                                }
                                let client_side = handshake.client_side.min(1);
                                let mut sess = self.start_session(info, handshake, packet);
                                let cdir = Dir::C2s;
                                if let Some(isn) = info.isn[client_side] {
                                    sess.dirs[cdir.index()].tcp_seq_base =
                                        Some(isn.wrapping_add(1));
                                }
                                for ch in &pending_client {
                                    self.ws_data(
                                        &mut sess,
                                        info.first_packet,
                                        cdir,
                                        ch.stream_offset,
                                        None,
                                        &ch.data,
                                        ch.packet,
                                        ch.ts,
                                    );
                                }
                                // Held bytes dropped at the end of the hold
                                // are lost now, not when (if) more come.
                                if let Some(last) = pending_client.last() {
                                    self.dropped_gap(
                                        &mut sess,
                                        info.first_packet,
                                        cdir,
                                        tracker.held_end(),
                                        last.packet,
                                        last.ts,
                                    );
                                }
                                let dir = if s == client_side { Dir::C2s } else { Dir::S2c };
                                let start = data.len().saturating_sub(rest);
                                let tail = data.get(start..).unwrap_or(&[]);
                                let tail_off = offset + start as u64;
                                // The response's side starts its frames right after the head,
                                // even when nothing follows yet in this segment.
                                let ds = &mut sess.dirs[dir.index()];
                                ds.base = Some(tail_off);
                                ds.next = Some(tail_off);
                                ds.tcp_seq_base = Some(seq.wrapping_sub(offset as u32));
                                if !tail.is_empty() {
                                    self.ws_data(
                                        &mut sess,
                                        info.first_packet,
                                        dir,
                                        tail_off,
                                        Some(seq.wrapping_add(start as u32)),
                                        tail,
                                        packet,
                                        ts,
                                    );
                                }
                                *st = Conn::Ws(sess);
                                Interest::Continue
                            }
                        }
                    }
                    StreamEvent::Gap {
                        side,
                        offset,
                        seq,
                        len,
                        packet,
                        ts,
                        reason,
                    } => {
                        tracker.gap(side_index(side));
                        self.counters.gaps += 1;
                        self.counters.gap_bytes += len;
                        let rec = GapRecord {
                            session: None,
                            flow: info.first_packet,
                            dir: None,
                            seq,
                            offset,
                            len,
                            reason: reason.name().to_owned(),
                            packet: (packet > 0).then(|| self.files.local(packet).1),
                            ts: Some(ts.rfc3339()),
                        };
                        let r = self.sink.gap(&rec);
                        self.fail(r);
                        Interest::Continue
                    }
                    StreamEvent::Anomaly { anomaly, .. } => {
                        self.emit_anomaly(&anomaly, None, info.first_packet, None);
                        Interest::Continue
                    }
                    StreamEvent::Fin { .. } | StreamEvent::Rst { .. } => Interest::Continue,
                };
                if let Conn::Http(tracker) = st {
                    let mut anomalies = Vec::new();
                    tracker.drain_anomalies(&mut anomalies);
                    for a in &anomalies {
                        self.emit_anomaly(a, None, info.first_packet, None);
                    }
                }
                interest
            }
            Conn::Ws(sess) => {
                let dir_of = |side: Side| {
                    if side_index(side) == sess.client_side {
                        Dir::C2s
                    } else {
                        Dir::S2c
                    }
                };
                match ev {
                    StreamEvent::Data {
                        side,
                        offset,
                        seq,
                        data,
                        packet,
                        ts,
                    } => {
                        let dir = dir_of(side);
                        self.ws_data(
                            sess,
                            info.first_packet,
                            dir,
                            offset,
                            Some(seq),
                            data,
                            packet,
                            ts,
                        );
                    }
                    StreamEvent::Gap {
                        side,
                        offset,
                        seq,
                        len,
                        packet,
                        ts,
                        reason,
                    } => {
                        let dir = dir_of(side);
                        self.counters.gaps += 1;
                        self.counters.gap_bytes += len;
                        let rec = GapRecord {
                            session: Some(sess.id),
                            flow: info.first_packet,
                            dir: Some(dir.as_str().to_owned()),
                            seq,
                            offset,
                            len,
                            reason: reason.name().to_owned(),
                            packet: (packet > 0).then(|| self.files.local(packet).1),
                            ts: Some(ts.rfc3339()),
                        };
                        let r = self.sink.gap(&rec);
                        self.fail(r);
                        self.ws_gap(sess, info.first_packet, dir, offset, len, packet, ts);
                    }
                    StreamEvent::Anomaly { side, anomaly } => {
                        let dir = dir_of(side);
                        sess.counts.anomalies += 1;
                        *sess
                            .counts
                            .anomalies_by_name
                            .entry(anomaly.name)
                            .or_default() += 1;
                        self.emit_anomaly(&anomaly, Some(sess.id), info.first_packet, Some(dir));
                    }
                    StreamEvent::Fin { ts, side, .. } => {
                        sess.counts.last_ts = ts;
                        sess.fins[side_index(side)] = true;
                        if self.end_at_close && sess.fins == [true; 2] {
                            return self.end_session_now(st, info, CloseReason::Fin);
                        }
                    }
                    StreamEvent::Rst { ts, .. } => {
                        sess.counts.last_ts = ts;
                        if self.end_at_close {
                            return self.end_session_now(st, info, CloseReason::Rst);
                        }
                    }
                }
                Interest::Continue
            }
        }
    }

    fn closing_in_order(&mut self, _info: &FlowInfo, list: u8, order: PacketNo) {
        self.sink.order_hint(list, order);
    }

    fn close(&mut self, st: Conn, info: &FlowInfo, reason: CloseReason) {
        // (A session ended at its close is Conn::Ignored by now.)
        match st {
            Conn::Ws(sess) => self.end_session(sess, info, &reason),
            Conn::Http(mut tracker) => {
                tracker.finish();
                let mut anomalies = Vec::new();
                tracker.drain_anomalies(&mut anomalies);
                for a in &anomalies {
                    self.emit_anomaly(a, None, info.first_packet, None);
                }
            }
            Conn::Ignored => {}
        }
    }
}

/// How a run over capture files ended, when the sink did not fail.
pub struct RunOutcome<S> {
    pub sink: S,
    pub stats: StatsRecord,
    /// The capture error that ended reading early, after everything before
    /// it was analysed and every flow was flushed.
    pub capture_error: Option<crate::capture::CaptureError>,
}

/// Called after every packet with the bytes read so far of the current
/// input, for progress reporting.
pub trait Progress {
    fn file(&mut self, _index: usize, _path: &str, _size: Option<u64>) {}
    fn advance(&mut self, _bytes: u64, _sessions: u64) {}
    fn done(&mut self) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Opens input `index` of a run and tells the progress display about it.
pub(crate) fn open_input(
    index: usize,
    path: &std::path::Path,
    progress: &mut dyn Progress,
) -> Result<crate::capture::CaptureReader, crate::capture::CaptureError> {
    let reader = crate::capture::CaptureReader::open(path)?;
    let size = std::fs::metadata(path).ok().map(|m| m.len());
    progress.file(index, &path.display().to_string(), size);
    Ok(reader)
}

/// Reads the capture files in order, as one capture, through one analyzer.
/// `Err` only when the sink fails (or the first file cannot be opened at all
/// is reported as a capture error in the outcome).
pub fn run_files<S: Sink>(
    paths: &[std::path::PathBuf],
    cfg: Config,
    sink: S,
    progress: &mut dyn Progress,
) -> io::Result<RunOutcome<S>> {
    let mut an = Analyzer::new(cfg, sink);
    let mut capture_error = None;
    'files: for (i, path) in paths.iter().enumerate() {
        let mut reader = match open_input(i, path, progress) {
            Ok(r) => r,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        an.begin_file();
        let mut n: u64 = 0;
        loop {
            match reader.next_packet() {
                Ok(Some(pkt)) => {
                    an.packet(&pkt)?;
                    n += 1;
                    if n % PROGRESS_PACKETS == 0 {
                        progress.advance(reader.bytes_consumed(), an.h.counters.sessions);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    capture_error = Some(e);
                    break 'files;
                }
            }
            an.notices_from(&mut reader)?;
        }
        an.notices_from(&mut reader)?;
        progress.advance(reader.bytes_consumed(), an.h.counters.sessions);
    }
    progress.done();
    let (sink, stats) = an.finish()?;
    Ok(RunOutcome {
        sink,
        stats,
        capture_error,
    })
}

/// Describes each input for the `capture` record: size and SHA-256 of the
/// file as stored, its format, link types, packet count and time span. The
/// digest and the packet scan read the file side by side on two threads
/// (the digest is the longer; the scan hides behind it). stdin (`-`) cannot
/// be read twice and gets only its path.
pub fn describe_inputs(paths: &[std::path::PathBuf]) -> Vec<crate::session::InputFile> {
    let mut out = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let mut info = crate::session::InputFile {
            index,
            path: path.display().to_string(),
            ..Default::default()
        };
        if path.as_os_str() != "-" {
            info.size = std::fs::metadata(path).ok().map(|m| m.len());
            let digest = std::thread::scope(|s| {
                let digest = s.spawn(|| sha256_file(path).ok());
                scan_input(path, &mut info);
                digest.join().ok().flatten()
            });
            info.sha256 = digest;
        }
        out.push(info);
    }
    out
}

/// Read buffer of the description pass. Kept under glibc's initial mmap
/// threshold (128 KiB): freeing a larger, mmap'd buffer raises that
/// threshold for the rest of the run, and the analysis's message buffers then
/// fragment the heap (peak RSS on a 1 GB capture went from 47 to 100 MiB).
const DESCRIBE_BUFFER: usize = 64 * 1024;

/// The packet count, time span, format and link types of one input file.
fn scan_input(path: &std::path::Path, info: &mut crate::session::InputFile) {
    let Ok(mut r) = crate::capture::CaptureReader::open_with_buffer(path, DESCRIBE_BUFFER) else {
        return;
    };
    let mut packets = 0u64;
    let (mut first, mut last) = (None, None);
    while let Ok(Some(p)) = r.next_packet() {
        packets += 1;
        first.get_or_insert(p.ts);
        last = Some(p.ts);
    }
    info.format = Some(match r.format() {
        crate::capture::CaptureFormat::Pcapng => "pcapng".to_owned(),
        _ => "pcap".to_owned(),
    });
    info.link_types = r.link_types();
    info.packets = Some(packets);
    info.first_ts = first.map(|t| t.rfc3339());
    info.last_ts = last.map(|t| t.rfc3339());
}

/// SHA-256 of a file as stored, in lowercase hex.
pub fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; DESCRIBE_BUFFER];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::synth::{conn::Conn as SConn, pcap::PcapWriter, ws as sws};

    /// Runs a synthetic capture through an analyzer with a Collect sink.
    fn run(pcap: Vec<u8>) -> crate::sink::Collect {
        let mut r = crate::capture::CaptureReader::from_reader(
            Box::new(std::io::Cursor::new(pcap)),
            "test",
        )
        .unwrap();
        let mut an = Analyzer::new(Config::default(), crate::sink::Collect::default());
        while let Some(p) = r.next_packet().unwrap() {
            an.packet(&p).unwrap();
        }
        an.finish().unwrap().0
    }

    fn conn() -> SConn {
        SConn::new(
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            1,
            2,
        )
    }

    #[test]
    fn giving_up_on_http_reports_why() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut c = conn();
        c.handshake(&mut w, Timestamp::new(1, 0)).unwrap();
        let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
        req.resize(100_000, b'a');
        c.send(&mut w, Dir::C2s, &req, 1460).unwrap();
        let names: Vec<String> = run(w.into_inner())
            .anomalies
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["http_head_too_large"]);
    }

    #[test]
    fn dropped_pending_client_bytes_are_a_gap_record() {
        const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut c = conn();
        c.handshake(&mut w, Timestamp::new(1, 0)).unwrap();
        let req = sws::upgrade_request("h", "/", KEY, None);
        c.send(&mut w, Dir::C2s, &req, 1460).unwrap();
        // A 3002-byte frame (8-byte header) before the 101: 1002 bytes over
        // the limit, and nothing after them to reveal the hole.
        let mut f = Vec::new();
        sws::frame(&mut f, true, 0, 2, Some([1, 2, 3, 4]), &[7u8; 2994]);
        c.send(&mut w, Dir::C2s, &f, 500).unwrap();
        c.send(&mut w, Dir::S2c, &sws::upgrade_response(KEY, None), 1460)
            .unwrap();
        let mut cfg = Config::default();
        cfg.http.max_pending_client_bytes = 2000;
        let mut r = crate::capture::CaptureReader::from_reader(
            Box::new(std::io::Cursor::new(w.into_inner())),
            "test",
        )
        .unwrap();
        let mut an = Analyzer::new(cfg, crate::sink::Collect::default());
        while let Some(p) = r.next_packet().unwrap() {
            an.packet(&p).unwrap();
        }
        let (out, stats) = an.finish().unwrap();
        assert_eq!(out.gaps.len(), 1, "{:?}", out.gaps);
        let g = &out.gaps[0];
        // Offsets count the TCP stream: the request, then 2000 held bytes.
        assert_eq!((g.offset, g.len), (req.len() as u64 + 2000, 1002), "{g:?}");
        assert_eq!(g.dir.as_deref(), Some("c2s"));
        assert_eq!((stats.gaps, stats.gap_bytes), (1, 1002));
        assert_eq!(out.ends[0].gaps, 1);
    }

    #[test]
    fn server_deflate_parameter_faults_are_reported() {
        const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut c = conn();
        c.handshake(&mut w, Timestamp::new(1, 0)).unwrap();
        let req = sws::upgrade_request("h", "/", KEY, Some("permessage-deflate"));
        c.send(&mut w, Dir::C2s, &req, 1460).unwrap();
        let ext = "permessage-deflate; server_max_window_bits=20; client_max_window_bits=x";
        c.send(
            &mut w,
            Dir::S2c,
            &sws::upgrade_response(KEY, Some(ext)),
            1460,
        )
        .unwrap();
        let details: Vec<String> = run(w.into_inner())
            .anomalies
            .into_iter()
            .filter(|a| a.name == "deflate_bad_parameter")
            .map(|a| a.detail)
            .collect();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details.iter().any(|d| d.contains("server_max_window_bits")));
        assert!(details.iter().any(|d| d.contains("client_max_window_bits")));
    }

    #[test]
    fn file_map_locates_packets() {
        let m = FileMap {
            bases: vec![0, 10, 25],
        };
        assert_eq!(m.local(1), (0, 1));
        assert_eq!(m.local(10), (0, 10));
        assert_eq!(m.local(11), (1, 1));
        assert_eq!(m.local(25), (1, 15));
        assert_eq!(m.local(26), (2, 1));
    }
}
