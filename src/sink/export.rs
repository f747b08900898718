//! The export directory (`--export DIR`), format in `docs/export.md`.
//! (Being implemented: see the export branch.)

use super::Sink;
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    pub dir: PathBuf,
    pub force: bool,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    pub inputs: Vec<crate::session::InputFile>,
}

pub struct ExportSink {
    _opts: ExportOptions,
}

impl ExportSink {
    pub fn create(opts: ExportOptions) -> std::io::Result<Self> {
        Ok(ExportSink { _opts: opts })
    }
}

impl Sink for ExportSink {}
