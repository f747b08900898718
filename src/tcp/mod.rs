//! tcp stage: the flow table and per-direction stream reassembly.
//!
//! [`FlowTable::process`] takes decoded segments in capture order and calls a
//! [`FlowHandler`] with each direction's bytes in stream order, exactly once,
//! as [`StreamEvent`]s. What the capture lacks is reported, never invented:
//! a [`StreamEvent::Gap`] stands for every byte range that will not come.
//!
//! # Policies (what an analyst should know)
//!
//! * **Flows** are keyed by the unordered 4-tuple. [`Side::Orig`] is the
//!   sender of a SYN without ACK; with no SYN seen, the sender of the first
//!   packet (or, when that packet is a SYN-ACK, its receiver).
//! * **Stream offsets** are u64 from the byte after the SYN (or, for
//!   mid-stream captures, from the first sequence number seen in that
//!   direction, which may be a pure ACK). Sequence numbers are compared with
//!   32-bit wraparound (nearest to the next expected byte). Bytes before offset
//!   0 are counted and reported once (`tcp_data_before_stream_start`).
//! * **In order**: a segment at the next expected byte with nothing buffered
//!   is delivered straight from the packet (no copy).
//! * **Retransmissions** of delivered bytes are not delivered again. The last
//!   [`TcpConfig::history_bytes_per_dir`] delivered bytes of each direction are
//!   kept to compare them; a difference is `tcp_conflicting_retransmission`
//!   (delivered bytes cannot change whatever the policy). Older bytes cannot be
//!   compared and are counted as unverified. Bytes arriving for a range already
//!   reported as a gap are `tcp_late_data` and not delivered.
//! * **Out of order** segments are buffered (sorted, disjoint pieces, each
//!   keeping its packet number and timestamp) until the hole fills; delivery
//!   then emits one `Data` per piece.
//! * **Overlaps** between a new segment and buffered bytes, whatever their
//!   shape, are resolved per byte range: identical bytes keep the buffered
//!   copy; differing bytes give `tcp_conflicting_overlap` (offset, both
//!   versions' packet and segment length, FNV-1a of each version of the
//!   overlapping range) and keep the first arrival under
//!   [`OverlapPolicy::First`] (the default, as Suricata's BSD-like targets do
//!   for most stacks) or the newest under [`OverlapPolicy::Last`]. Real bytes
//!   always replace bytes known lost to the snaplen.
//! * **Snaplen**: the `missing` bytes of a truncated segment are a gap of
//!   reason [`GapReason::SnapLen`] right after its payload.
//! * **Limits** (per-direction buffered bytes, per-direction buffered pieces,
//!   global memcap): when a new out-of-order segment would exceed one, the
//!   direction skips ahead: each hole before buffered data becomes a `Gap`
//!   (reason `BufferLimit`, `SegmentLimit` or `Memcap`), the buffered data is
//!   delivered, then the new segment is handled with an empty buffer (if it
//!   still cannot be buffered, the hole before it is a gap too). Nothing
//!   received is dropped; the anomaly `tcp_reassembly_limit` says it happened.
//!   Segments starting more than [`TcpConfig::max_seq_ahead`] beyond the next
//!   expected byte are not buffered (`tcp_out_of_window`).
//! * **ACK-based loss**: when one side acknowledges bytes beyond a hole that
//!   has buffered data after it, the hole's bytes reached that side and will
//!   not be resent: the capture lost them. The hole (up to the ACK) becomes a
//!   `Lost` gap at once and the buffered data is delivered; should the bytes
//!   show up later after all (capture reordering), they are `tcp_late_data`.
//! * **Keepalives** (0 or 1 byte at next-1) and **zero-window probes** (1 byte
//!   at next while the receiver advertises a zero window) inject no bytes;
//!   the probed byte is delivered when it is sent again.
//! * **FIN**: `Fin` is emitted when the stream is complete up to the FIN. At
//!   EOF/timeout/eviction, missing bytes before a seen FIN are a `Lost` gap.
//!   Data beyond the FIN is delivered and flagged `tcp_data_after_fin`.
//! * **RST**: both directions are flushed (holes become `Lost` gaps) and `Rst`
//!   is emitted (once per side). Data after a RST is still delivered (a
//!   forensic tool must show it) and flagged `tcp_data_after_rst`; a RST's
//!   own payload is diagnostic text, not stream data (`tcp_rst_with_payload`).
//! * **SYN**: sets the ISN. A SYN with another sequence number on a closed
//!   connection (FIN both ways or RST), or far (over 16 MiB) from an active
//!   stream's position, starts a new connection: the old flow is closed with
//!   [`CloseReason::NewConnection`] and a new one (new id) opened. Before any
//!   data, a changed SYN replaces the ISN in place (`tcp_syn_seq_changed`), so
//!   a SYN flood on one 4-tuple holds one flow and no queue. Otherwise it is
//!   ignored (`tcp_syn_in_window`).
//! * **Close**: flows closed by FIN both ways or RST linger for
//!   `timeout_closed_secs` to absorb retransmissions. `close` gets `Fin`/`Rst`
//!   for such flows whether they end by timeout, eviction or end of input;
//!   other flows get `Timeout`, `Evicted` or `EndOfInput`.
//! * **Ignore**: after a handler returns [`Interest::Ignore`] the flow gets no
//!   more events (only `close`), its buffers are freed, and it stays in the
//!   table so its later packets do not start a new flow.
//! * **Time** is packet time (the largest timestamp seen); timeouts are
//!   checked once per second of packet time, looking only at the oldest flow
//!   of each timeout class.
//! * **Flows are charged to the memcap** (slot, map entry and the handler's
//!   [`FlowHandler::state_heap`]) while they live. A new flow beyond
//!   `max_flows`, or that would not fit in the memcap, evicts the least
//!   recently used flows, closed flows first; a flow that carried payload
//!   gets `tcp_flow_evicted` before it is flushed and closed.

mod reasm;
mod seq;
mod slab;

pub use seq::SeqMap;

use crate::decode::TunnelKey;
use crate::decode::{flags, Segment};
use crate::types::{Anomaly, PacketNo, Timestamp};
use reasm::{Ctx, DirState, Emit, Part, Pkt};
use serde::Serialize;
use slab::{FoldState, Slab};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Every anomaly name this module can emit, with its meaning.
pub const ANOMALIES: &[(&str, &str)] = &[
    (
        "tcp_flow_evicted",
        "a flow with payload was closed to make room (max_flows or memcap reached); its later packets are not decoded",
    ),
    (
        "tcp_conflicting_overlap",
        "overlapping out-of-order segments carry different bytes; the overlap policy chose one",
    ),
    (
        "tcp_conflicting_retransmission",
        "a retransmission differs from bytes already delivered; the delivered bytes stand",
    ),
    (
        "tcp_late_data",
        "bytes arrived for a range already reported as a gap; not delivered",
    ),
    (
        "tcp_data_before_stream_start",
        "bytes before the first sequence number seen in a direction; not delivered",
    ),
    (
        "tcp_out_of_window",
        "a segment starts implausibly far beyond the next expected byte; not delivered",
    ),
    (
        "tcp_reassembly_limit",
        "an out-of-order buffer limit was hit; holes were reported as gaps early",
    ),
    (
        "tcp_data_after_fin",
        "bytes at or beyond the FIN's sequence number were delivered",
    ),
    (
        "tcp_data_after_rst",
        "payload sent after a RST on the connection; delivered",
    ),
    (
        "tcp_rst_with_payload",
        "a RST segment carries payload (diagnostic text); not stream data",
    ),
    (
        "tcp_syn_seq_changed",
        "a SYN with a new sequence number before any data; the ISN was replaced",
    ),
    (
        "tcp_syn_in_window",
        "a SYN with a different sequence number on a live connection; ignored",
    ),
    (
        "tcp_fin_seq_changed",
        "a second FIN at a different sequence number; the first one stands",
    ),
];

/// Which endpoint of a connection sent something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The connection's initiator (sender of the SYN, see the module docs).
    Orig,
    /// The connection's responder.
    Resp,
}

impl Side {
    /// 0 for [`Side::Orig`], 1 for [`Side::Resp`]: the index of per-side arrays.
    pub fn index(self) -> usize {
        self as usize
    }
    /// The opposite endpoint.
    pub fn other(self) -> Side {
        match self {
            Side::Orig => Side::Resp,
            Side::Resp => Side::Orig,
        }
    }
    /// `"orig"` or `"resp"`, as in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Orig => "orig",
            Side::Resp => "resp",
        }
    }
}

/// One TCP connection as the flow table sees it, passed to every [`FlowHandler`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// Sequential from 1 in order of creation.
    pub id: u64,
    /// The initiator's address and port.
    pub orig: SocketAddr,
    /// The responder's address and port.
    pub resp: SocketAddr,
    /// Packet (1-based) that created the flow.
    pub first_packet: PacketNo,
    /// Timestamp of that packet.
    pub first_ts: Timestamp,
    /// Initial sequence numbers from the SYN / SYN-ACK, indexed by [`Side::index`].
    pub isn: [Option<u32>; 2],
    /// The tunnel the flow travels in (`TunnelKey::NONE` if none); part of
    /// the flow key. `decode::Decoder::tunnel` gives its layers.
    pub tunnel: TunnelKey,
}

/// What the flow table delivers about one direction of a connection, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// `offset` is the stream offset of `data[0]`, `seq` its sequence number.
    Data {
        /// Direction the bytes travel from.
        side: Side,
        /// Stream offset of `data[0]` (bytes from the stream start).
        offset: u64,
        /// TCP sequence number of `data[0]`.
        seq: u32,
        /// The payload bytes, borrowed from the packet or the reassembly buffer.
        data: &'a [u8],
        /// Packet (1-based) that carried these bytes.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// `len` bytes at `offset` that will not be delivered; `packet` is the
    /// packet carrying the first byte after the gap (or the truncated one).
    Gap {
        /// Direction of the missing bytes.
        side: Side,
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Sequence number of the first missing byte.
        seq: u32,
        /// Number of missing bytes.
        len: u64,
        /// Packet carrying the first byte after the gap (or the truncated packet).
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
        /// Why the bytes will not be delivered.
        reason: GapReason,
    },
    /// The stream of `side` is complete up to its FIN.
    Fin {
        /// Direction that sent the FIN.
        side: Side,
        /// Packet carrying the FIN.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// A RST was seen; sent at most once per side.
    Rst {
        /// Direction that sent the RST.
        side: Side,
        /// Packet carrying the RST.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// A protocol violation in this direction (a `tcp_*` name of [`ANOMALIES`]).
    Anomaly {
        /// Direction the anomaly concerns.
        side: Side,
        /// The anomaly, with its packet and detail.
        anomaly: Anomaly,
    },
}

/// Why a [`StreamEvent::Gap`]'s bytes will not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// A hole never filled (EOF, timeout, eviction, RST).
    Lost,
    /// Bytes cut from a captured packet by the snapshot length.
    SnapLen,
    /// The direction's out-of-order byte limit was hit.
    BufferLimit,
    /// The global memory cap was hit.
    Memcap,
    /// The direction's out-of-order piece limit was hit.
    SegmentLimit,
}

impl GapReason {
    /// Stable snake_case name, as in the JSON output (`"lost"`, `"snaplen"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            GapReason::Lost => "lost",
            GapReason::SnapLen => "snaplen",
            GapReason::BufferLimit => "buffer_limit",
            GapReason::Memcap => "memcap",
            GapReason::SegmentLimit => "segment_limit",
        }
    }
}

/// What the flow table drives: the next stage, per connection.
pub trait FlowHandler {
    /// Per-connection state, made by [`FlowHandler::open`].
    type State;
    /// The handler's own failure (a sink that cannot write): it stops
    /// delivery at once and comes back out of the [`FlowTable`] call.
    type Error;
    /// Makes the per-connection state when a new flow is created.
    fn open(&mut self, info: &FlowInfo) -> Self::State;
    /// Handles one event of the flow; returning [`Interest::Ignore`] stops further events except `close`.
    fn event(
        &mut self,
        st: &mut Self::State,
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> Result<Interest, Self::Error>;
    /// The flow ends (`reason` says why); last call for this state.
    fn close(
        &mut self,
        st: Self::State,
        info: &FlowInfo,
        reason: CloseReason,
    ) -> Result<(), Self::Error>;
    /// Heap bytes a new flow's state takes beyond its inline size (boxed
    /// parsers), charged to the memcap with the flow itself.
    fn state_heap(&self) -> usize {
        0
    }
}

/// Watches a [`FlowTable`] as it runs: how large it grows, and the flows it
/// closes on its own schedule. For a caller that must rebuild the table's
/// timeline elsewhere (a sharded run merges its shards' output and peaks in
/// single-threaded order); the table calls nothing when none is installed
/// ([`FlowTable::observe`]).
pub trait TableObserver {
    /// Buffer memory rose to `bytes`.
    fn memory_rose(&mut self, bytes: u64);
    /// A flow was created; the table now holds `flows`.
    fn flows_rose(&mut self, flows: u64);
    /// The table is about to close a flow on its own schedule, in the order
    /// (`list`, `order`): timeouts go list by list (timeout class 0..=2),
    /// each in order of the packet that last touched the flow (`order`); end
    /// of input is list 3, in order of first packet. What the handler emits
    /// until [`TableObserver::closed`] belongs to that close.
    fn closing(&mut self, list: u8, order: PacketNo);
    /// The flow announced by [`TableObserver::closing`] is closed; the table
    /// now holds `flows` flows and `memory` bytes.
    fn closed(&mut self, flows: u64, memory: u64);
}

/// What a handler wants next from a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Keep delivering events.
    Continue,
    /// Stop buffering and delivering anything for this flow (it stays tracked).
    Ignore,
}

/// Why a flow was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// FIN both ways (also when a closed flow later times out, is evicted or input ends).
    Fin,
    /// A RST was seen (also when such a flow later times out, is evicted or input ends).
    Rst,
    /// Idle longer than its timeout class allows (packet time).
    Timeout,
    /// Evicted to make room (`max_flows` or memcap).
    Evicted,
    /// A SYN started a new connection on the same 4-tuple.
    NewConnection,
    /// Still open at the end of the input.
    EndOfInput,
}

impl CloseReason {
    /// Stable snake_case name, as in the JSON output (`"fin"`, `"rst"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::Timeout => "timeout",
            CloseReason::Evicted => "evicted",
            CloseReason::NewConnection => "new_connection",
            CloseReason::EndOfInput => "end_of_input",
        }
    }
}

/// How conflicting overlapping out-of-order bytes are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// Keep the bytes that arrived first.
    #[default]
    First,
    /// Keep the newest bytes.
    Last,
}

/// Limits, timeouts and policies of the flow table (docs/limits.md).
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Out-of-order payload bytes buffered per direction. Default 16 MiB.
    pub max_ooo_bytes_per_dir: usize,
    /// Out-of-order pieces buffered per direction. Default 65536.
    pub max_segments_per_dir: usize,
    /// All buffers of the table: payload plus per-piece overhead, plus history
    /// rings (which may use at most half of it). Default 512 MiB.
    pub memcap: usize,
    /// Live flows; the least recently used is evicted beyond. Default 1,000,000.
    pub max_flows: usize,
    /// Idle timeout of flows without payload and not seen both ways. Default 30 s.
    pub timeout_new_secs: u64,
    /// Idle timeout of active flows. Default 3600 s.
    pub timeout_established_secs: u64,
    /// Linger after FIN both ways or RST. Default 120 s.
    pub timeout_closed_secs: u64,
    /// Which copy of conflicting overlapping bytes is kept. Default `First`.
    pub overlap: OverlapPolicy,
    /// Delivered bytes kept per direction to check retransmissions. Default 4096.
    pub history_bytes_per_dir: usize,
    /// Segments starting further than this beyond the next expected byte are
    /// not buffered. Default 1 GiB.
    pub max_seq_ahead: u64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_ooo_bytes_per_dir: 16 << 20,
            max_segments_per_dir: 65_536,
            memcap: 512 << 20,
            max_flows: 1_000_000,
            timeout_new_secs: 30,
            timeout_established_secs: 3600,
            timeout_closed_secs: 120,
            overlap: OverlapPolicy::First,
            history_bytes_per_dir: 4096,
            max_seq_ahead: 1 << 30,
        }
    }
}

/// Counters of the tcp stage (the `tcp_*` fields of the `stats` record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpStats {
    /// Flows opened (including replacements after a new SYN).
    pub flows_created: u64,
    /// Flows closed by an idle timeout.
    pub flows_timed_out: u64,
    /// Flows evicted to make room (`max_flows` or memcap).
    pub flows_evicted: u64,
    /// Of `flows_evicted`: flows evicted because a new flow would not fit
    /// in the memcap (the rest hit `max_flows`).
    pub flows_evicted_memcap: u64,
    /// Flows closed because a SYN reused their 4-tuple.
    pub flows_replaced: u64,
    /// Flows whose handler returned [`Interest::Ignore`].
    pub flows_ignored: u64,
    /// Largest number of live flows at once.
    pub peak_flows: u64,
    /// TCP segments processed.
    pub segments: u64,
    /// TCP payload bytes seen in all segments (before reassembly).
    pub payload_bytes: u64,
    /// Bytes delivered as [`StreamEvent::Data`].
    pub bytes_delivered: u64,
    /// Segments starting below the next expected byte.
    pub retransmissions: u64,
    /// Retransmitted bytes (below the next expected byte) not delivered again.
    pub retransmitted_bytes: u64,
    /// Retransmitted bytes older than the history ring (could not be compared).
    pub unverified_retransmitted_bytes: u64,
    /// Retransmissions that differed from the delivered bytes (`tcp_conflicting_retransmission`).
    pub conflicting_retransmissions: u64,
    /// Segments buffered out of order.
    pub ooo_segments: u64,
    /// Overlaps of new segments with buffered out-of-order bytes.
    pub overlaps: u64,
    /// Overlaps with differing bytes (`tcp_conflicting_overlap`).
    pub conflicting_overlaps: u64,
    /// [`StreamEvent::Gap`]s reported.
    pub gaps: u64,
    /// Bytes in reported gaps.
    pub gap_bytes: u64,
    /// Gap bytes declared early because a limit was hit.
    pub limit_gap_bytes: u64,
    /// Times a reassembly limit was hit (`tcp_reassembly_limit`).
    pub limit_hits: u64,
    /// Bytes that arrived for a range already reported as a gap (`tcp_late_data`).
    pub late_bytes: u64,
    /// Bytes before a direction's stream start (`tcp_data_before_stream_start`).
    pub bytes_before_start: u64,
    /// Segments too far beyond the next expected byte (`tcp_out_of_window`).
    pub out_of_window_segments: u64,
    /// TCP keepalives seen (no bytes injected).
    pub keepalives: u64,
    /// Zero-window probes seen (no bytes injected).
    pub zero_window_probes: u64,
    /// SYNs repeated with the same sequence number.
    pub syn_retransmissions: u64,
    /// SYNs whose new sequence number replaced the ISN before any data (`tcp_syn_seq_changed`).
    pub syn_seq_changes: u64,
    /// SYNs with another sequence number on a live connection, ignored (`tcp_syn_in_window`).
    pub syn_in_window: u64,
    /// Payload bytes carried by RST segments (`tcp_rst_with_payload`), not delivered.
    pub rst_payload_bytes: u64,
    /// Gap bytes reported because the peer acknowledged data past a hole.
    pub ack_gap_bytes: u64,
    /// Deliveries made without a history ring (memcap too tight).
    pub history_denied: u64,
    /// Largest buffer memory (bytes) used at once.
    pub peak_memory: u64,
    /// Largest out-of-order buffer (bytes, with overhead) of one direction at once.
    pub peak_ooo_per_dir: u64,
}

impl TcpStats {
    /// Every counter by name, in declaration order: what the `stats`
    /// record shows (as `tcp_NAME`). `peak_*` are largest values, not sums.
    pub fn fields(&self) -> [(&'static str, u64); 34] {
        [
            ("flows_created", self.flows_created),
            ("flows_timed_out", self.flows_timed_out),
            ("flows_evicted", self.flows_evicted),
            ("flows_evicted_memcap", self.flows_evicted_memcap),
            ("flows_replaced", self.flows_replaced),
            ("flows_ignored", self.flows_ignored),
            ("peak_flows", self.peak_flows),
            ("segments", self.segments),
            ("payload_bytes", self.payload_bytes),
            ("bytes_delivered", self.bytes_delivered),
            ("retransmissions", self.retransmissions),
            ("retransmitted_bytes", self.retransmitted_bytes),
            (
                "unverified_retransmitted_bytes",
                self.unverified_retransmitted_bytes,
            ),
            (
                "conflicting_retransmissions",
                self.conflicting_retransmissions,
            ),
            ("ooo_segments", self.ooo_segments),
            ("overlaps", self.overlaps),
            ("conflicting_overlaps", self.conflicting_overlaps),
            ("gaps", self.gaps),
            ("gap_bytes", self.gap_bytes),
            ("limit_gap_bytes", self.limit_gap_bytes),
            ("limit_hits", self.limit_hits),
            ("late_bytes", self.late_bytes),
            ("bytes_before_start", self.bytes_before_start),
            ("out_of_window_segments", self.out_of_window_segments),
            ("keepalives", self.keepalives),
            ("zero_window_probes", self.zero_window_probes),
            ("syn_retransmissions", self.syn_retransmissions),
            ("syn_seq_changes", self.syn_seq_changes),
            ("syn_in_window", self.syn_in_window),
            ("rst_payload_bytes", self.rst_payload_bytes),
            ("ack_gap_bytes", self.ack_gap_bytes),
            ("history_denied", self.history_denied),
            ("peak_memory", self.peak_memory),
            ("peak_ooo_per_dir", self.peak_ooo_per_dir),
        ]
    }

    /// Adds a shard's counts: sums, but the largest of the `peak_*` values.
    pub fn add(&mut self, o: &TcpStats) {
        let mut merged = self.fields();
        for (m, (name, v)) in merged.iter_mut().zip(o.fields()) {
            m.1 = if name.starts_with("peak_") {
                m.1.max(v)
            } else {
                m.1 + v
            };
        }
        *self = TcpStats::from_fields(&merged);
    }

    fn from_fields(f: &[(&'static str, u64); 34]) -> Self {
        let [(_, flows_created), (_, flows_timed_out), (_, flows_evicted), (_, flows_evicted_memcap), (_, flows_replaced), (_, flows_ignored), (_, peak_flows), (_, segments), (_, payload_bytes), (_, bytes_delivered), (_, retransmissions), (_, retransmitted_bytes), (_, unverified_retransmitted_bytes), (_, conflicting_retransmissions), (_, ooo_segments), (_, overlaps), (_, conflicting_overlaps), (_, gaps), (_, gap_bytes), (_, limit_gap_bytes), (_, limit_hits), (_, late_bytes), (_, bytes_before_start), (_, out_of_window_segments), (_, keepalives), (_, zero_window_probes), (_, syn_retransmissions), (_, syn_seq_changes), (_, syn_in_window), (_, rst_payload_bytes), (_, ack_gap_bytes), (_, history_denied), (_, peak_memory), (_, peak_ooo_per_dir)] =
            *f;
        TcpStats {
            flows_created,
            flows_timed_out,
            flows_evicted,
            flows_evicted_memcap,
            flows_replaced,
            flows_ignored,
            peak_flows,
            segments,
            payload_bytes,
            bytes_delivered,
            retransmissions,
            retransmitted_bytes,
            unverified_retransmitted_bytes,
            conflicting_retransmissions,
            ooo_segments,
            overlaps,
            conflicting_overlaps,
            gaps,
            gap_bytes,
            limit_gap_bytes,
            limit_hits,
            late_bytes,
            bytes_before_start,
            out_of_window_segments,
            keepalives,
            zero_window_probes,
            syn_retransmissions,
            syn_seq_changes,
            syn_in_window,
            rst_payload_bytes,
            ack_gap_bytes,
            history_denied,
            peak_memory,
            peak_ooo_per_dir,
        }
    }
}

const CLASS_NEW: u8 = 0;
const CLASS_ESTABLISHED: u8 = 1;
const CLASS_CLOSED: u8 = 2;

/// How far (bytes of sequence space) a SYN must be from an active stream's
/// position to be taken as a new connection rather than a stray SYN.
const NEW_CONNECTION_DISTANCE: u32 = 1 << 24;

// Once-per-side bits beyond those of `reasm`.
const ONCE_RST_EVENT: u16 = 1 << 10;

struct Flow<S> {
    info: FlowInfo,
    state: S,
    dirs: [DirState; 2],
    ignored: bool,
    rst: bool,
    last_seen: Timestamp,
    /// Packet that last touched the flow (its position in its recency list).
    last_packet: PacketNo,
}

impl<S> Flow<S> {
    fn closed(&self) -> bool {
        self.rst || self.dirs.iter().all(|d| d.fin_done)
    }
    fn class(&self) -> u8 {
        if self.closed() {
            CLASS_CLOSED
        } else if self.dirs.iter().any(|d| d.active()) || self.dirs.iter().all(|d| d.seen) {
            CLASS_ESTABLISHED
        } else {
            CLASS_NEW
        }
    }
    fn side_of(&self, src: SocketAddr, dst: SocketAddr) -> Side {
        if src == self.info.orig && dst == self.info.resp {
            Side::Orig
        } else {
            Side::Resp
        }
    }
    fn key(&self) -> FlowKey {
        flow_key(self.info.tunnel, self.info.orig, self.info.resp)
    }
}

/// A flow's endpoints as an ordered pair (both directions share it), and
/// its tunnel, so identical inner addresses in two tunnels stay apart.
type FlowKey = (TunnelKey, SocketAddr, SocketAddr);

/// Bytes one entry of a `HashMap<K, V>` takes at worst: the entry and its
/// control byte, at hashbrown's 7/8 load factor, in a table that may have
/// just doubled.
const fn map_entry_cost<K, V>() -> usize {
    (std::mem::size_of::<(K, V)>() + 1) * 8 / 7 * 2
}

fn flow_key(tunnel: TunnelKey, a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b {
        (tunnel, a, b)
    } else {
        (tunnel, b, a)
    }
}

/// Live flows and their reassembly state.
pub struct FlowTable<S> {
    cfg: TcpConfig,
    map: HashMap<FlowKey, u32, FoldState>,
    flows: Slab<Flow<S>>,
    stats: TcpStats,
    mem: usize,
    /// What one flow costs in the table itself (slab slot, free-list entry,
    /// map entry, each with room for the containers' growth), before its
    /// handler state's heap; charged to `mem` while the flow lives.
    flow_base_cost: usize,
    next_id: u64,
    clock: Option<Timestamp>,
    next_check_secs: i64,
    observer: Option<Box<dyn TableObserver>>,
}

enum SynOutcome {
    None,
    Retransmitted,
    Changed,
    InWindow,
}

impl<S> FlowTable<S> {
    /// An empty table with these limits.
    pub fn new(cfg: TcpConfig) -> Self {
        FlowTable {
            cfg,
            map: HashMap::with_hasher(FoldState::random()),
            flows: Slab::new(),
            stats: TcpStats::default(),
            mem: 0,
            flow_base_cost: slab::slot_size::<Flow<S>>()
                + std::mem::size_of::<u32>()
                + map_entry_cost::<FlowKey, u32>(),
            next_id: 1,
            clock: None,
            next_check_secs: i64::MIN,
            observer: None,
        }
    }

    /// Installs `o` to watch the table from now on (see [`TableObserver`]).
    pub fn observe(&mut self, o: Box<dyn TableObserver>) {
        self.observer = Some(o);
    }

    fn closing(&mut self, list: u8, order: PacketNo) {
        if let Some(o) = self.observer.as_deref_mut() {
            o.closing(list, order);
        }
    }

    fn closed(&mut self) {
        let (flows, memory) = (self.flows.len() as u64, self.mem as u64);
        if let Some(o) = self.observer.as_deref_mut() {
            o.closed(flows, memory);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// Number of live flows (including lingering closed and ignored ones).
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no flow is live.
    pub fn is_empty(&self) -> bool {
        self.flows.len() == 0
    }

    /// Bytes held in buffers (out-of-order pieces with overhead, history rings).
    pub fn memory_used(&self) -> usize {
        self.mem
    }

    /// Feeds one decoded segment (`packet` 1-based, `ts` its time) to its flow, calling `h` for what it delivers.
    pub fn process<H: FlowHandler<State = S>>(
        &mut self,
        seg: &Segment<'_>,
        packet: PacketNo,
        ts: Timestamp,
        h: &mut H,
    ) -> Result<(), H::Error> {
        self.stats.segments += 1;
        self.stats.payload_bytes += seg.payload.len() as u64;
        self.advance_clock(ts, h)?;
        let key = flow_key(seg.tunnel, seg.src, seg.dst);
        let idx = match self.map.get(&key).copied() {
            Some(idx) if seg.flags & flags::SYN != 0 && self.starts_new_connection(idx, seg) => {
                self.stats.flows_replaced += 1;
                self.close_flow(idx, CloseReason::NewConnection, h)?;
                self.create(key, seg, packet, ts, h)?
            }
            Some(idx) => idx,
            None => self.create(key, seg, packet, ts, h)?,
        };
        self.handle(idx, seg, packet, ts, h)
    }

    /// End of input: every live flow, in order of creation, is flushed (a gap
    /// for each hole, then the buffered data) and closed.
    pub fn finish<H: FlowHandler<State = S>>(&mut self, h: &mut H) -> Result<(), H::Error> {
        let mut live: Vec<(u64, u32)> = self
            .flows
            .indices()
            .into_iter()
            .filter_map(|i| self.flows.get(i).map(|f| (f.info.id, i)))
            .collect();
        live.sort_unstable();
        for (_, idx) in live {
            let Some(f) = self.flows.get(idx) else {
                continue;
            };
            let order = f.info.first_packet;
            self.closing(slab::CLASSES as u8, order);
            self.close_flow(idx, CloseReason::EndOfInput, h)?;
            self.closed();
        }
        Ok(())
    }

    /// Moves packet time forward to `ts` (never back) and, once per second of
    /// it, times out idle flows. `process` calls it for every segment; a
    /// sharded run also calls it with the clock of packets other shards got,
    /// so timeouts fire at the same packet as in a single-threaded run.
    pub fn advance_clock<H: FlowHandler<State = S>>(
        &mut self,
        ts: Timestamp,
        h: &mut H,
    ) -> Result<(), H::Error> {
        let now = match self.clock {
            Some(c) if c >= ts => c,
            _ => {
                self.clock = Some(ts);
                ts
            }
        };
        if now.secs >= self.next_check_secs {
            self.next_check_secs = now.secs.saturating_add(1);
            self.expire(now, h)?;
        }
        Ok(())
    }

    fn expire<H: FlowHandler<State = S>>(
        &mut self,
        now: Timestamp,
        h: &mut H,
    ) -> Result<(), H::Error> {
        let limits = [
            self.cfg.timeout_new_secs,
            self.cfg.timeout_established_secs,
            self.cfg.timeout_closed_secs,
        ];
        for (class, limit) in limits.into_iter().enumerate() {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            while let Some(idx) = self.flows.oldest(class) {
                let Some(f) = self.flows.get(idx) else { break };
                if now.secs.saturating_sub(f.last_seen.secs) <= limit {
                    break;
                }
                let order = f.last_packet;
                self.closing(class as u8, order);
                self.stats.flows_timed_out += 1;
                self.close_flow(idx, CloseReason::Timeout, h)?;
                self.closed();
            }
        }
        Ok(())
    }

    fn starts_new_connection(&self, idx: u32, seg: &Segment<'_>) -> bool {
        let Some(f) = self.flows.get(idx) else {
            return false;
        };
        let d = f.side_of(seg.src, seg.dst).index();
        let (Some(me), isn) = (f.dirs.get(d), f.info.isn.get(d).copied().flatten()) else {
            return false;
        };
        if isn == Some(seg.seq) {
            return false;
        }
        if f.closed() {
            return true;
        }
        let distance =
            (seg.seq.wrapping_add(1).wrapping_sub(me.seq_at(me.next)) as i32).unsigned_abs();
        me.active() && distance > NEW_CONNECTION_DISTANCE
    }

    fn create<H: FlowHandler<State = S>>(
        &mut self,
        key: FlowKey,
        seg: &Segment<'_>,
        packet: PacketNo,
        ts: Timestamp,
        h: &mut H,
    ) -> Result<u32, H::Error> {
        let cost = self.flow_cost(h);
        loop {
            let full = self.flows.len() >= self.cfg.max_flows.max(1);
            let over = self.mem.saturating_add(cost) > self.cfg.memcap;
            if !full && !over {
                break;
            }
            let victim = self
                .flows
                .oldest(CLASS_CLOSED as usize)
                .or_else(|| self.flows.oldest_overall());
            let Some(v) = victim else { break };
            self.stats.flows_evicted += 1;
            if !full {
                self.stats.flows_evicted_memcap += 1;
            }
            self.report_eviction(v, full, packet, ts, h)?;
            self.close_flow(v, CloseReason::Evicted, h)?;
        }
        Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            mem: &mut self.mem,
            observer: self.observer.as_deref_mut(),
        }
        .charge(cost);
        let syn_ack = seg.flags & flags::SYN != 0 && seg.flags & flags::ACK != 0;
        let (orig, resp) = if syn_ack {
            (seg.dst, seg.src)
        } else {
            (seg.src, seg.dst)
        };
        let info = FlowInfo {
            id: self.next_id,
            orig,
            resp,
            first_packet: packet,
            first_ts: ts,
            isn: [None, None],
            tunnel: seg.tunnel,
        };
        self.next_id += 1;
        self.stats.flows_created += 1;
        let state = h.open(&info);
        let flow = Flow {
            info,
            state,
            dirs: [DirState::default(), DirState::default()],
            ignored: false,
            rst: false,
            last_seen: self.clock.unwrap_or(ts),
            last_packet: packet,
        };
        let idx = self.flows.insert(flow, CLASS_NEW);
        self.map.insert(key, idx);
        self.stats.peak_flows = self.stats.peak_flows.max(self.flows.len() as u64);
        if let Some(o) = self.observer.as_deref_mut() {
            o.flows_rose(self.flows.len() as u64);
        }
        Ok(idx)
    }

    fn handle<H: FlowHandler<State = S>>(
        &mut self,
        idx: u32,
        seg: &Segment<'_>,
        packet: PacketNo,
        ts: Timestamp,
        h: &mut H,
    ) -> Result<(), H::Error> {
        let clock = self.clock.unwrap_or(ts);
        let Some(flow) = self.flows.get_mut(idx) else {
            return Ok(());
        };
        flow.last_seen = clock;
        flow.last_packet = packet;
        let side = flow.side_of(seg.src, seg.dst);
        let px = Pkt { side, packet, ts };
        let was_ignored = flow.ignored;
        let mut ctx = Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            mem: &mut self.mem,
            observer: self.observer.as_deref_mut(),
        };
        let Flow {
            info,
            state,
            dirs,
            ignored,
            rst,
            ..
        } = flow;
        let [d0, d1] = dirs;
        let (me, peer) = match side {
            Side::Orig => (d0, d1),
            Side::Resp => (d1, d0),
        };
        me.seen = true;
        me.window = seg.window;
        let syn = seg.flags & flags::SYN != 0;
        let outcome = track_syn(me, &mut info.isn[side.index()], seg, syn);
        match outcome {
            SynOutcome::Retransmitted => ctx.stats.syn_retransmissions += 1,
            SynOutcome::Changed => ctx.stats.syn_seq_changes += 1,
            SynOutcome::InWindow => ctx.stats.syn_in_window += 1,
            SynOutcome::None => {}
        }
        let is_rst = seg.flags & flags::RST != 0;
        let is_fin = seg.flags & flags::FIN != 0;
        let mut failure = None;
        if *ignored {
            *rst |= is_rst;
            if is_fin {
                me.fin_done = true;
            }
        } else {
            let info: &FlowInfo = info;
            let mut emit = |ev: StreamEvent<'_>| -> bool {
                if *ignored || failure.is_some() {
                    return false;
                }
                match h.event(state, info, ev) {
                    Ok(Interest::Continue) => true,
                    Ok(Interest::Ignore) => {
                        *ignored = true;
                        false
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            };
            let seg_flags = SegFlags {
                syn,
                fin: is_fin,
                rst: is_rst,
            };
            on_segment(
                me, peer, rst, seg, seg_flags, outcome, &px, &mut ctx, &mut emit,
            );
        }
        if *ignored {
            if !was_ignored {
                ctx.stats.flows_ignored += 1;
            }
            me.release(&mut ctx);
            peer.release(&mut ctx);
        }
        let class = flow.class();
        self.flows.touch(idx, class);
        failure.map_or(Ok(()), Err)
    }

    /// Tells a flow that carried payload it is being evicted: its later
    /// packets would start a new flow, which cannot pick up its stream.
    fn report_eviction<H: FlowHandler<State = S>>(
        &mut self,
        idx: u32,
        for_max_flows: bool,
        packet: PacketNo,
        ts: Timestamp,
        h: &mut H,
    ) -> Result<(), H::Error> {
        let Some(f) = self.flows.get_mut(idx) else {
            return Ok(());
        };
        if f.ignored || !f.dirs.iter().any(|d| d.active()) {
            return Ok(());
        }
        let px = Pkt {
            side: Side::Orig,
            packet,
            ts,
        };
        let why = if for_max_flows {
            format!("max_flows ({}) reached", self.cfg.max_flows)
        } else {
            format!("memcap ({} bytes) reached", self.cfg.memcap)
        };
        let detail = format!(
            "{why}: the least recently used flow is closed (its holes become gaps); its later packets, if any, are not decoded"
        );
        let ev = px.anomaly("tcp_flow_evicted", detail);
        if h.event(&mut f.state, &f.info, ev)? == Interest::Ignore {
            f.ignored = true;
        }
        Ok(())
    }

    /// Memory charged for one live flow, buffers aside.
    fn flow_cost<H: FlowHandler<State = S>>(&self, h: &H) -> usize {
        self.flow_base_cost.saturating_add(h.state_heap())
    }

    fn close_flow<H: FlowHandler<State = S>>(
        &mut self,
        idx: u32,
        reason: CloseReason,
        h: &mut H,
    ) -> Result<(), H::Error> {
        let Some(mut flow) = self.flows.remove(idx) else {
            return Ok(());
        };
        self.mem = self.mem.saturating_sub(self.flow_cost(h));
        let key = flow.key();
        if self.map.get(&key) == Some(&idx) {
            self.map.remove(&key);
        }
        let mut ctx = Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            mem: &mut self.mem,
            observer: self.observer.as_deref_mut(),
        };
        let ts = self.clock.unwrap_or_default();
        let Flow {
            info,
            state,
            dirs,
            ignored,
            ..
        } = &mut flow;
        for (i, side) in [Side::Orig, Side::Resp].into_iter().enumerate() {
            let Some(dir) = dirs.get_mut(i) else { continue };
            if !*ignored {
                let px = Pkt {
                    side,
                    packet: 0,
                    ts,
                };
                let mut failure = None;
                let mut emit = |ev: StreamEvent<'_>| -> bool {
                    if *ignored || failure.is_some() {
                        return false;
                    }
                    match h.event(state, info, ev) {
                        Ok(Interest::Continue) => true,
                        Ok(Interest::Ignore) => {
                            *ignored = true;
                            false
                        }
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    }
                };
                dir.finish(&px, &mut ctx, &mut emit);
                if let Some(e) = failure {
                    dir.release(&mut ctx);
                    return Err(e);
                }
            }
            dir.release(&mut ctx);
        }
        // After the flush: a FIN behind a hole counts once the hole is a gap.
        let reason = match reason {
            CloseReason::Timeout | CloseReason::Evicted | CloseReason::EndOfInput if flow.rst => {
                CloseReason::Rst
            }
            CloseReason::Timeout | CloseReason::Evicted | CloseReason::EndOfInput
                if flow.closed() =>
            {
                CloseReason::Fin
            }
            r => r,
        };
        let Flow { info, state, .. } = flow;
        h.close(state, &info, reason)
    }
}

#[derive(Clone, Copy)]
struct SegFlags {
    syn: bool,
    fin: bool,
    rst: bool,
}

/// Sets or checks the ISN of the sending direction.
fn track_syn(me: &mut DirState, isn: &mut Option<u32>, seg: &Segment<'_>, syn: bool) -> SynOutcome {
    if !syn {
        if !me.base.is_known() {
            me.base = SeqMap::new(seg.seq);
        }
        return SynOutcome::None;
    }
    if *isn == Some(seg.seq) {
        return SynOutcome::Retransmitted;
    }
    let fresh = !me.base.is_known();
    if fresh || (!me.active() && me.next == 0) {
        me.base = SeqMap::new(seg.seq.wrapping_add(1));
        *isn = Some(seg.seq);
        return if fresh {
            SynOutcome::None
        } else {
            SynOutcome::Changed
        };
    }
    SynOutcome::InWindow
}

/// Flags, payload and FIN of one segment on a tracked, non-ignored flow.
#[allow(clippy::too_many_arguments)]
fn on_segment(
    me: &mut DirState,
    peer: &mut DirState,
    rst: &mut bool,
    seg: &Segment<'_>,
    fl: SegFlags,
    syn: SynOutcome,
    px: &Pkt,
    ctx: &mut Ctx<'_>,
    emit: &mut Emit<'_>,
) {
    let _ = on_segment_inner(me, peer, rst, seg, fl, syn, px, ctx, emit);
}

#[allow(clippy::too_many_arguments)]
fn on_segment_inner(
    me: &mut DirState,
    peer: &mut DirState,
    rst: &mut bool,
    seg: &Segment<'_>,
    fl: SegFlags,
    syn: SynOutcome,
    px: &Pkt,
    ctx: &mut Ctx<'_>,
    emit: &mut Emit<'_>,
) -> Option<()> {
    let go = |b: bool| if b { Some(()) } else { None };
    match syn {
        SynOutcome::Changed if me.once(reasm::ONCE_SYN_CHANGED) => {
            let d = format!("SYN with sequence number {} before any data; ISN replaced (further ones counted in stats)", seg.seq);
            go(emit(px.anomaly("tcp_syn_seq_changed", d)))?;
        }
        SynOutcome::InWindow if me.once(reasm::ONCE_SYN_CHANGED) => {
            let d = format!(
                "SYN with sequence number {} on a live connection near its stream position; ignored \
                 (further ones counted in stats)",
                seg.seq
            );
            go(emit(px.anomaly("tcp_syn_in_window", d)))?;
        }
        _ => {}
    }
    let plen = seg.payload.len() as u64;
    if fl.rst {
        if plen > 0 {
            ctx.stats.rst_payload_bytes += plen;
            let text: String =
                String::from_utf8_lossy(seg.payload.get(..64).unwrap_or(seg.payload)).into();
            let d = format!("RST carries {plen} bytes of payload, not stream data: {text:?}");
            go(emit(px.anomaly("tcp_rst_with_payload", d)))?;
        }
        *rst = true;
        go(me.finish(px, ctx, emit))?;
        let peer_px = Pkt {
            side: px.side.other(),
            ..*px
        };
        go(peer.finish(&peer_px, ctx, emit))?;
        if me.once(ONCE_RST_EVENT) {
            go(emit(StreamEvent::Rst {
                side: px.side,
                packet: px.packet,
                ts: px.ts,
            }))?;
        }
        return Some(());
    }
    if seg.flags & flags::ACK != 0 {
        let peer_px = Pkt {
            side: px.side.other(),
            ..*px
        };
        go(peer.on_ack(seg.ack, &peer_px, ctx, emit))?;
    }
    // Snaplen cannot legitimately cut more than an IP packet holds; a larger
    // claim is corrupt metadata and must not move the stream by gigabytes.
    let missing = (seg.missing as u64).min(u16::MAX as u64);
    let off = me.offset_of(seg.seq.wrapping_add(fl.syn as u32));
    let next = me.next.min(i64::MAX as u64) as i64;
    let plain = !fl.syn && !fl.fin && missing == 0;
    if plain && plen <= 1 && me.next > 0 && off == next - 1 {
        ctx.stats.keepalives += 1;
        return Some(());
    }
    if plain && plen == 1 && off == next && peer.seen && peer.window == 0 {
        ctx.stats.zero_window_probes += 1;
        return Some(());
    }
    if plen + missing > 0 {
        me.payload_seen = true;
        if *rst && me.once(reasm::ONCE_AFTER_RST) {
            let d = format!(
                "{} bytes sent after a RST on this connection; delivered",
                plen + missing
            );
            go(emit(px.anomaly("tcp_data_after_rst", d)))?;
        }
    }
    go(me.on_part(off, Part::Bytes(seg.payload), px, ctx, emit))?;
    let lost_at = off.saturating_add(plen as i64);
    go(me.on_part(
        lost_at,
        Part::Lost(missing, GapReason::SnapLen),
        px,
        ctx,
        emit,
    ))?;
    if fl.fin {
        let fin_off = lost_at.saturating_add(missing as i64);
        if let Ok(f) = u64::try_from(fin_off) {
            let first_fin = me.fin;
            match first_fin {
                None => me.set_fin(f, px.packet, px.ts),
                Some(old) if old != f && me.once(reasm::ONCE_FIN_CHANGED) => {
                    let d = format!(
                        "FIN at stream offset {f} after a FIN at {old}; the first one stands"
                    );
                    go(emit(px.anomaly("tcp_fin_seq_changed", d)))?;
                }
                _ => {}
            }
            go(me.check_fin(px.side, emit))?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests;
