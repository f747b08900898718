//! The session stage: per TCP connection, first the HTTP handshake tracker,
//! then, once a `101` answers an upgrade request, a WebSocket session with a
//! [`Direction`](super::Direction) per direction. It turns what the stages
//! before it found into records, and hands them to one [`Sink`], in the order
//! the packets revealed them.
//!
//! A sink's write error stops the run: every method returns it, and the
//! flow table hands it back out of [`FlowTable`](crate::tcp::FlowTable).

use super::files::FileMap;
use super::record::{AnomalyRecord, GapRecord};
use super::stats::SessionStats;
use super::ws::WsSession;
use crate::http::{Feed, HandshakeTracker, HttpLimits};
use crate::message::MessageConfig;
use crate::sink::{FrameView, Sink};
use crate::tcp::{CloseReason, FlowHandler, FlowInfo, Interest, Side, StreamEvent};
use crate::types::{Anomaly, Dir, Timestamp};
use std::io;

/// Per-connection state.
pub enum Conn {
    /// Before the upgrade: the HTTP handshake is being read.
    Http(Box<HandshakeTracker>),
    /// After the 101: WebSocket frames are being decoded.
    Ws(Box<WsSession>),
    /// Not WebSocket, or its session has ended: nothing more is decoded.
    Ignored,
}

/// What the session stage needs from the run's configuration.
#[derive(Clone, Debug, Default)]
pub struct StageConfig {
    /// Limits of the HTTP handshake stage.
    pub http: HttpLimits,
    /// Limits and options of the message stage.
    pub message: MessageConfig,
}

/// The session stage of one run (or of one shard of a threaded run).
pub struct SessionStage<S: Sink> {
    pub(super) sink: S,
    pub(super) cfg: StageConfig,
    pub(super) files: FileMap,
    pub(super) stats: SessionStats,
    pub(super) want_streams: bool,
    pub(super) want_frames: bool,
    pub(super) scratch_packets: Vec<u64>,
    pub(super) scratch_frames: Vec<FrameView>,
    /// End a session (record and memory) as soon as TCP has closed it (FIN
    /// both ways, or RST) rather than when the flow leaves the table.
    end_at_close: bool,
}

impl<S: Sink> SessionStage<S> {
    /// A stage writing to `sink`; what the sink reads decides what is kept
    /// (frames, payloads) and what is sent (raw streams).
    pub fn new(mut cfg: StageConfig, sink: S) -> Self {
        let want_streams = sink.wants_streams();
        let want_frames = sink.wants_frames();
        cfg.message.keep_frames = cfg.message.keep_frames || want_frames;
        cfg.message.keep_payloads = cfg.message.keep_payloads && sink.wants_payloads();
        SessionStage {
            sink,
            cfg,
            files: FileMap::default(),
            stats: SessionStats::default(),
            want_streams,
            want_frames,
            scratch_packets: Vec::new(),
            scratch_frames: Vec::new(),
            end_at_close: false,
        }
    }

    /// See [`crate::pipeline::Analyzer::end_sessions_at_close`].
    pub fn end_sessions_at_close(&mut self, on: bool) {
        self.end_at_close = on;
    }

    /// The sink the records go to.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Ends the stage and returns its sink.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// The input files of the run, for per-file packet numbers.
    pub fn files(&self) -> &FileMap {
        &self.files
    }

    /// The input files of the run, to mark where each new input begins.
    pub fn files_mut(&mut self) -> &mut FileMap {
        &mut self.files
    }

    /// The stage's counts so far.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Reports an anomaly of no connection (a capture file's oddity, an IP
    /// fragment problem): counted by `name` and written as `rec`.
    pub fn report(&mut self, name: &'static str, rec: &AnomalyRecord) -> io::Result<()> {
        *self.stats.anomalies.entry(name).or_default() += 1;
        self.sink.anomaly(rec)
    }

    pub(super) fn anomaly_record(
        &mut self,
        a: &Anomaly,
        session: Option<u64>,
        flow: u64,
        dir: Option<Dir>,
    ) -> AnomalyRecord {
        *self.stats.anomalies.entry(a.name).or_default() += 1;
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
            dir,
            packet,
            ts: (a.ts != Timestamp::default()).then_some(a.ts),
            detail: a.detail.clone(),
            file: if self.files.multi() { file } else { None },
        }
    }

    pub(super) fn emit_anomaly(
        &mut self,
        a: &Anomaly,
        session: Option<u64>,
        flow: u64,
        dir: Option<Dir>,
    ) -> io::Result<()> {
        let rec = self.anomaly_record(a, session, flow, dir);
        self.sink.anomaly(&rec)
    }

    /// The anomalies the handshake tracker holds, as flow anomalies.
    fn tracker_anomalies(&mut self, tracker: &mut HandshakeTracker, flow: u64) -> io::Result<()> {
        let mut anomalies = Vec::new();
        tracker.drain_anomalies(&mut anomalies);
        for a in &anomalies {
            self.emit_anomaly(a, None, flow, None)?;
        }
        Ok(())
    }

    /// A TCP gap, as a `gap` record (and in the run's counts).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gap_record(
        &mut self,
        session: Option<u64>,
        flow: u64,
        dir: Option<Dir>,
        seq: u32,
        offset: u64,
        len: u64,
        reason: &str,
        packet: u64,
        ts: Timestamp,
    ) -> io::Result<()> {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        let rec = GapRecord {
            session,
            flow,
            dir,
            seq,
            offset,
            len,
            reason: reason.to_owned(),
            packet: (packet > 0).then(|| self.files.local(packet).1),
            ts: Some(ts),
        };
        self.sink.gap(&rec)
    }

    /// An event of a connection still in its HTTP phase.
    fn http_event(
        &mut self,
        st: &mut Conn,
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> io::Result<Interest> {
        let Conn::Http(tracker) = st else {
            return Ok(Interest::Continue);
        };
        let flow = info.first_packet;
        match ev {
            StreamEvent::Data {
                side,
                offset,
                seq,
                data,
                packet,
                ts,
            } => match tracker.feed(side.index(), data, offset, packet, ts) {
                Feed::Continue => {}
                Feed::NotHttp => {
                    // The reason it gave up (head too large, too many
                    // headers, malformed) must not vanish.
                    self.tracker_anomalies(tracker, flow)?;
                    *st = Conn::Ignored;
                    return Ok(Interest::Ignore);
                }
                Feed::Upgraded {
                    handshake,
                    rest,
                    pending_client,
                } => {
                    self.tracker_anomalies(tracker, flow)?;
                    let held_end = tracker.held_end();
                    let start = data.len().saturating_sub(rest);
                    let first = super::ws::FirstBytes {
                        side,
                        offset,
                        seq,
                        tail: data.get(start..).unwrap_or(&[]),
                        start,
                        packet,
                        ts,
                    };
                    let sess = self.upgrade(info, handshake, pending_client, held_end, first)?;
                    *st = Conn::Ws(sess);
                    return Ok(Interest::Continue);
                }
            },
            StreamEvent::Gap {
                side,
                offset,
                seq,
                len,
                packet,
                ts,
                reason,
            } => {
                tracker.gap(side.index());
                self.gap_record(
                    None,
                    flow,
                    None,
                    seq,
                    offset,
                    len,
                    reason.name(),
                    packet,
                    ts,
                )?;
            }
            StreamEvent::Anomaly { anomaly, .. } => {
                self.emit_anomaly(&anomaly, None, flow, None)?
            }
            StreamEvent::Fin { .. } | StreamEvent::Rst { .. } => {}
        }
        if let Conn::Http(tracker) = st {
            self.tracker_anomalies(tracker, flow)?;
        }
        Ok(Interest::Continue)
    }

    /// An event of a WebSocket session.
    fn ws_event(
        &mut self,
        st: &mut Conn,
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> io::Result<Interest> {
        let Conn::Ws(sess) = st else {
            return Ok(Interest::Continue);
        };
        let flow = info.first_packet;
        let dir = |side: Side| sess.dir_of(side);
        match ev {
            StreamEvent::Data {
                side,
                offset,
                seq,
                data,
                packet,
                ts,
            } => {
                let d = dir(side);
                self.ws_data(sess, flow, d, offset, Some(seq), data, packet, ts)?;
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
                let d = dir(side);
                let id = Some(sess.id);
                self.gap_record(
                    id,
                    flow,
                    Some(d),
                    seq,
                    offset,
                    len,
                    reason.name(),
                    packet,
                    ts,
                )?;
                self.ws_gap(sess, flow, d, offset, len, packet, ts)?;
            }
            StreamEvent::Anomaly { side, anomaly } => {
                let d = dir(side);
                sess.summary.anomalies += 1;
                self.emit_anomaly(&anomaly, Some(sess.id), flow, Some(d))?;
            }
            StreamEvent::Fin { ts, side, .. } => {
                sess.summary.last_ts = ts;
                sess.fins[side.index()] = true;
                if self.end_at_close && sess.fins == [true; 2] {
                    return self.end_session_now(st, info, CloseReason::Fin);
                }
            }
            StreamEvent::Rst { ts, .. } => {
                sess.summary.last_ts = ts;
                if self.end_at_close {
                    return self.end_session_now(st, info, CloseReason::Rst);
                }
            }
        }
        Ok(Interest::Continue)
    }

    /// Ends the session in `st` now (see `end_sessions_at_close`); the flow
    /// stays in the table, ignored, to absorb late packets.
    fn end_session_now(
        &mut self,
        st: &mut Conn,
        info: &FlowInfo,
        reason: CloseReason,
    ) -> io::Result<Interest> {
        if let Conn::Ws(sess) = std::mem::replace(st, Conn::Ignored) {
            self.end_session(sess, info, &reason)?;
        }
        Ok(Interest::Ignore)
    }
}

impl<S: Sink> FlowHandler for SessionStage<S> {
    type State = Conn;
    type Error = io::Error;

    fn open(&mut self, _info: &FlowInfo) -> Conn {
        Conn::Http(Box::new(HandshakeTracker::new(self.cfg.http)))
    }

    /// The boxed tracker `open` makes, with the allocator's chunk header.
    fn state_heap(&self) -> usize {
        std::mem::size_of::<HandshakeTracker>() + 16
    }

    fn event(
        &mut self,
        st: &mut Conn,
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> io::Result<Interest> {
        match st {
            Conn::Ignored => Ok(Interest::Ignore),
            Conn::Http(_) => self.http_event(st, info, ev),
            Conn::Ws(_) => self.ws_event(st, info, ev),
        }
    }

    fn close(&mut self, st: Conn, info: &FlowInfo, reason: CloseReason) -> io::Result<()> {
        // (A session ended at its close is Conn::Ignored by now.)
        match st {
            Conn::Ws(sess) => self.end_session(sess, info, &reason),
            Conn::Http(mut tracker) => {
                tracker.finish();
                self.tracker_anomalies(&mut tracker, info.first_packet)
            }
            Conn::Ignored => Ok(()),
        }
    }
}
