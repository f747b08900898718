//! Wires the stages together for one run: packets in, records out.
//!
//! [`Analyzer`] owns the decoder, the flow table and the
//! [`SessionStage`]: each packet is decoded
//! ([`decode`](crate::decode)), its segment goes to the flow table
//! ([`tcp`](crate::tcp)), which hands each connection's stream to the
//! session stage; that stage writes every record to one [`Sink`]. Nothing
//! else happens here: the facts belong to the stages.
//!
//! [`files`] reads capture files through an analyzer; [`sharded`] does the
//! same with several threads, with identical output; `live` runs the live
//! capture loop; [`output`] builds the writers a run's options ask for.

pub mod files;
#[cfg(feature = "live")]
pub mod live;
pub mod output;
pub mod sharded;
mod stats;

pub use files::{
    anomalous_sessions, describe_inputs, hex, run_files, sha256_file, NoProgress, Progress,
    RunOutcome,
};
pub use output::{Format, Outputs};
pub use stats::{InputStats, RunStats};

use crate::capture::{Notice, Packet};
use crate::decode::{DecodeConfig, DecodeEvent, Decoder, Segment};
use crate::http::HttpLimits;
use crate::message::MessageConfig;
use crate::session::{AnomalyRecord, Conn, SessionStage, StageConfig, StatsRecord};
use crate::sink::Sink;
use crate::tcp::{FlowTable, TableObserver, TcpConfig};
use crate::types::{PacketNo, Timestamp};
use std::io;

/// Every limit and policy of a run.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Link, tunnel and IP decoding limits.
    pub decode: DecodeConfig,
    /// TCP flow table and reassembly limits.
    pub tcp: TcpConfig,
    /// HTTP handshake limits.
    pub http: HttpLimits,
    /// Message (fragments, deflate, UTF-8) limits.
    pub message: MessageConfig,
}

/// One run of the analysis.
pub struct Analyzer<S: Sink> {
    decoder: Decoder,
    flows: FlowTable<Conn>,
    stage: SessionStage<S>,
    input: InputStats,
    global: PacketNo,
    decode_events: Vec<DecodeEvent>,
    notices: Vec<Notice>,
}

/// How often (packets) a file run reports progress.
pub(crate) const PROGRESS_PACKETS: u64 = 4096;

impl<S: Sink> Analyzer<S> {
    /// An analyzer with the limits of `cfg`, writing its records to `sink`.
    pub fn new(cfg: Config, sink: S) -> Self {
        let stage_cfg = StageConfig {
            http: cfg.http,
            message: cfg.message,
        };
        Analyzer {
            decoder: Decoder::new(cfg.decode),
            flows: FlowTable::new(cfg.tcp),
            stage: SessionStage::new(stage_cfg, sink),
            input: InputStats::default(),
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
        self.stage.end_sessions_at_close(on);
    }

    /// The sink the records go to.
    pub fn sink_mut(&mut self) -> &mut S {
        self.stage.sink_mut()
    }

    /// Packets from here on belong to the next input file.
    pub fn begin_file(&mut self) {
        self.stage.files_mut().begin_at(self.global);
    }

    /// Packets after global number `base` belong to the next input file
    /// (a shard of a sharded run, which does not see every packet).
    pub fn begin_file_at(&mut self, base: PacketNo) {
        self.stage.files_mut().begin_at(base);
    }

    /// Analyses one packet. Errors are the sink's (a failed write).
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        let packet = self.count(pkt);
        let decoded = self
            .decoder
            .decode(pkt.link_type, pkt.data, pkt.orig_len, pkt.ts);
        if let Ok(seg) = decoded {
            self.flows.process(&seg, packet, pkt.ts, &mut self.stage)?;
        }
        self.decoder_events(packet, pkt.ts)
    }

    /// Like [`Analyzer::packet`], but the decoded segment goes to `route`
    /// instead of this analyzer's flow table (the reader of a sharded run).
    pub fn packet_routed(
        &mut self,
        pkt: &Packet<'_>,
        route: &mut dyn FnMut(&Segment<'_>, PacketNo),
    ) -> io::Result<()> {
        let packet = self.count(pkt);
        let decoded = self
            .decoder
            .decode(pkt.link_type, pkt.data, pkt.orig_len, pkt.ts);
        if let Ok(seg) = decoded {
            route(&seg, packet);
        }
        self.decoder_events(packet, pkt.ts)
    }

    /// Numbers and counts one packet of the input.
    fn count(&mut self, pkt: &Packet<'_>) -> PacketNo {
        if !self.stage.files().started() {
            self.stage.files_mut().begin_at(0);
        }
        self.global += 1;
        self.input.packets += 1;
        self.input.bytes += pkt.data.len() as u64;
        self.global
    }

    /// IP-layer oddities (fragment overlaps, expiries) as anomalies.
    fn decoder_events(&mut self, packet: PacketNo, ts: Timestamp) -> io::Result<()> {
        self.decoder.drain_events(&mut self.decode_events);
        for ev in std::mem::take(&mut self.decode_events) {
            let rec = AnomalyRecord {
                name: ev.name.to_owned(),
                session: None,
                flow: None,
                dir: None,
                packet: (packet > 0).then(|| self.stage.files().local(packet).1),
                ts: (packet > 0).then_some(ts),
                detail: ev.detail,
                file: None,
            };
            self.stage.report(ev.name, &rec)?;
        }
        Ok(())
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
        let files = self.stage.files();
        let packet = (n.packet > 0).then(|| files.current_base() + n.packet);
        let rec = AnomalyRecord {
            name: n.name.to_owned(),
            session: None,
            flow: None,
            dir: None,
            packet: packet.map(|p| files.local(p).1),
            ts: None,
            detail: format!("{} (byte offset {})", n.detail, n.offset),
            file: files.multi().then(|| files.current()),
        };
        self.stage.report(n.name, &rec)
    }

    /// A segment decoded elsewhere (a shard of a sharded run), as packet
    /// `packet` (global number) would have delivered it.
    pub fn segment(
        &mut self,
        seg: &Segment<'_>,
        packet: PacketNo,
        ts: Timestamp,
    ) -> io::Result<()> {
        self.flows.process(seg, packet, ts, &mut self.stage)
    }

    /// Moves packet time forward (timing out idle flows, see
    /// [`FlowTable::advance_clock`]).
    pub fn advance_clock(&mut self, ts: Timestamp) -> io::Result<()> {
        self.flows.advance_clock(ts, &mut self.stage)
    }

    /// Installs `o` to watch the flow table (see [`TableObserver`]).
    pub fn observe_flows(&mut self, o: Box<dyn TableObserver>) {
        self.flows.observe(o);
    }

    /// The flow table's size now: flows, and buffer memory in bytes.
    pub fn flow_table_size(&self) -> (u64, u64) {
        (self.flows.len() as u64, self.flows.memory_used() as u64)
    }

    /// Sessions found so far (for progress reports).
    pub fn sessions(&self) -> u64 {
        self.stage.stats().sessions
    }

    /// End of input: IP fragments left over, then every flow, oldest first.
    pub fn end_of_input(&mut self) -> io::Result<()> {
        self.decoder.finish();
        self.decoder_events(0, Timestamp::default())?;
        self.flows.finish(&mut self.stage)
    }

    /// End of input: flush every flow, write the statistics.
    pub fn finish(mut self) -> io::Result<(S, StatsRecord)> {
        self.end_of_input()?;
        let stats = self.stats().record();
        let mut sink = self.stage.into_sink();
        sink.stats(&stats)?;
        sink.finish()?;
        Ok((sink, stats))
    }

    /// Every stage's counts so far.
    pub fn stats(&self) -> RunStats {
        RunStats {
            input: self.input.clone(),
            decode: self.decoder.stats().clone(),
            tcp: self.flows.stats().clone(),
            session: self.stage.stats().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::synth::{conn::Conn as SConn, pcap::PcapWriter, ws as sws};
    use crate::types::Dir;

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
        assert_eq!(g.dir, Some(Dir::C2s));
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
}
