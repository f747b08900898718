//! Records from what the stages found: the `session` record of a handshake,
//! and message and anomaly records from the message stage's output.

use super::files::FileMap;
use super::record::{CloseRecord, DeflateRecord, RequestRecord, ResponseRecord, SessionRecord};
use super::stage::SessionStage;
use super::stats::SessionSummary;
use crate::http::Handshake;
use crate::message::{self, DeflateParams, Output};
use crate::sink::{FrameView, MessageView, Sink};
use crate::tcp::FlowInfo;
use crate::types::{Anomaly, Dir};
use std::io;

/// A handshake's `session` record, the deflate parameters of each direction
/// (by [`Dir::index`]), and the faults found in those parameters.
pub(super) struct SessionStart {
    pub(super) record: SessionRecord,
    pub(super) deflate: [Option<DeflateParams>; 2],
    pub(super) param_faults: Vec<(&'static str, String)>,
}

/// The [`SessionStart`] of a handshake.
pub(super) fn session_record(
    files: &FileMap,
    info: &FlowInfo,
    hs: &Handshake,
    id: u64,
) -> SessionStart {
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
    let extensions: Vec<String> = hs.extensions.iter().map(|e| e.to_string()).collect();
    let mut deflate = [None, None];
    let mut param_anomalies = Vec::new();
    for dir in [Dir::C2s, Dir::S2c] {
        let (p, an) = message::deflate_params(&ext_params, dir);
        deflate[dir.index()] = p;
        // Each call reports the faults of its own direction's parameters
        // (shared faults only for C2s), so keeping both reports each once.
        param_anomalies.extend(an);
    }
    let deflate_rec = |p: &Option<DeflateParams>| {
        p.as_ref().map(|p| DeflateRecord {
            no_context_takeover: p.no_context_takeover,
            max_window_bits: p.max_window_bits,
            per_frame: p.per_frame,
        })
    };
    // A parsed request head came in at least one packet.
    debug_assert!(!req.packets.is_empty() && !resp.packets.is_empty());
    let (file, _) = files.local(req.packets.first().copied().unwrap_or(0));
    let version = |v: u8| format!("HTTP/1.{v}");
    let local_packets = |ps: &[u64]| -> Vec<u64> { ps.iter().map(|&p| files.local(p).1).collect() };
    let record = SessionRecord {
        id,
        ts: resp.ts,
        client: client.to_string(),
        server: server.to_string(),
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
            packets: local_packets(&req.packets),
        },
        response: ResponseRecord {
            status: resp.status,
            reason: resp.reason.clone(),
            version: version(resp.version),
            headers: header_pairs(&resp.headers),
            packets: local_packets(&resp.packets),
        },
        file: files.multi().then_some(file),
    };
    SessionStart {
        record,
        deflate,
        param_faults: param_anomalies,
    }
}

/// Turns one direction's message-stage output into sink records, keeping
/// the first write error for [`Emitter::done`] (the message stage reports
/// through a callback, which cannot return it).
pub(super) struct Emitter<'a, S: Sink> {
    stage: &'a mut SessionStage<S>,
    summary: &'a mut SessionSummary,
    id: u64,
    flow: u64,
    dir: Dir,
    /// TCP sequence number of the direction's WebSocket stream offset 0.
    seq0: u32,
    result: io::Result<()>,
}

impl<'a, S: Sink> Emitter<'a, S> {
    pub(super) fn new(
        stage: &'a mut SessionStage<S>,
        summary: &'a mut SessionSummary,
        id: u64,
        flow: u64,
        dir: Dir,
        seq0: u32,
    ) -> Self {
        Emitter {
            stage,
            summary,
            id,
            flow,
            dir,
            seq0,
            result: Ok(()),
        }
    }

    /// The first write error, if any.
    pub(super) fn done(self) -> io::Result<()> {
        self.result
    }

    pub(super) fn output(&mut self, out: Output<'_>) {
        if self.result.is_err() {
            return;
        }
        self.result = match out {
            Output::Anomaly(a) => self.anomaly(&a),
            Output::Message(m) => self.message(&m),
        };
    }

    fn anomaly(&mut self, a: &Anomaly) -> io::Result<()> {
        self.summary.anomalies += 1;
        self.stage
            .emit_anomaly(a, Some(self.id), self.flow, Some(self.dir))
    }

    fn message(&mut self, m: &message::Message<'_>) -> io::Result<()> {
        let h = &mut *self.stage;
        *h.stats
            .messages
            .entry(super::record::opcode_name(m.opcode))
            .or_default() += 1;
        self.summary.message(self.dir, m.len, m.wire_len);
        let close = m.close.as_ref().map(|c| (c.code, c.reason.as_str()));
        if let Some(c) = &m.close {
            self.summary.close[self.dir.index()] = Some(CloseRecord {
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
        h.sink.message(&view)
    }
}
