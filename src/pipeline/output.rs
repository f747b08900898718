//! The writers of a run, chosen once for `read` and live capture alike.

use crate::session::{tool_version, CaptureRecord, InputFile, SCHEMA_VERSION};
use crate::sink::{
    ExportOptions, ExportSink, JsonSink, Sink, Tee, TranscriptOptions, TranscriptSink,
};
use std::io::{self, Write};

/// What the main output is.
#[derive(Clone, Debug)]
pub enum Format {
    /// JSON Lines ([`JsonSink`]), ending with the stats record.
    Json,
    /// The transcript ([`TranscriptSink`]).
    Transcript(TranscriptOptions),
    /// Nothing but the statistics, which the caller prints at the end.
    StatsOnly,
}

impl Format {
    /// The writer of this format over `w`; `line_buffered` flushes every
    /// record (live capture, where output must appear as it happens).
    pub fn sink<W: Write + 'static>(&self, w: W, line_buffered: bool) -> Box<dyn Sink> {
        match self {
            Format::Json => {
                let mut s = JsonSink::new(w);
                s.line_buffered = line_buffered;
                Box::new(s)
            }
            Format::Transcript(o) => {
                let mut o = o.clone();
                o.line_buffered = line_buffered;
                Box::new(TranscriptSink::new(w, o))
            }
            Format::StatsOnly => Box::new(Tee::default()),
        }
    }

    /// Whether the run starts with a `capture` record (JSON only).
    pub fn writes_capture_record(&self) -> bool {
        matches!(self, Format::Json)
    }
}

/// Everything a run writes: the main output and, optionally, an export.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The main output's format.
    pub format: Format,
    /// `--export DIR`.
    pub export: Option<ExportOptions>,
    /// Flush after every record (live capture).
    pub line_buffered: bool,
}

impl Outputs {
    /// Whether the inputs must be described (hashed) before the run: the
    /// `capture` record of JSON output and the export's manifest need them.
    pub fn needs_inputs(&self) -> bool {
        self.format.writes_capture_record() || self.export.is_some()
    }

    /// The sinks, export first, then the main writer over `out`, with the
    /// `capture` record already written when the outputs have one.
    pub fn build<W: Write + 'static>(&self, out: W, inputs: Vec<InputFile>) -> io::Result<Tee> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(opts) = &self.export {
            let mut opts = opts.clone();
            opts.inputs = inputs.clone();
            let dir = opts.dir.clone();
            let sink = ExportSink::create(opts).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot export to {}: {e}", dir.display()))
            })?;
            sinks.push(Box::new(sink));
        }
        sinks.push(self.format.sink(out, self.line_buffered));
        let mut tee = Tee::new(sinks);
        if !inputs.is_empty() {
            tee.capture(&CaptureRecord {
                schema: SCHEMA_VERSION,
                tool: tool_version(),
                inputs,
            })?;
        }
        Ok(tee)
    }
}
