//! Per-file packet numbers of a run over several capture files.

use crate::types::PacketNo;

/// Maps global packet ordinals back to (input file, packet number in it).
#[derive(Clone, Debug, Default)]
pub struct FileMap {
    /// Global ordinal of the packet before each file's first packet.
    bases: Vec<u64>,
}

impl FileMap {
    /// The input index and its 1-based packet number.
    pub fn local(&self, global: PacketNo) -> (usize, u64) {
        // Packet 0 means "no packet" (end of input); real ones come after a
        // file has begun.
        debug_assert!(global == 0 || !self.bases.is_empty());
        let i = self
            .bases
            .partition_point(|&b| b < global)
            .saturating_sub(1);
        (i, global - self.bases.get(i).copied().unwrap_or(0))
    }

    /// Packets after global number `base` belong to the next input file.
    pub fn begin_at(&mut self, base: PacketNo) {
        debug_assert!(self.bases.last().map_or(true, |&b| b <= base));
        self.bases.push(base);
    }

    /// Whether any file has begun.
    pub fn started(&self) -> bool {
        !self.bases.is_empty()
    }

    /// Global ordinal before the current file's first packet.
    pub fn current_base(&self) -> u64 {
        self.bases.last().copied().unwrap_or(0)
    }

    /// Index of the current file.
    pub fn current(&self) -> usize {
        self.bases.len().saturating_sub(1)
    }

    /// Whether several input files are read (records then name their file).
    pub fn multi(&self) -> bool {
        self.bases.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_map_locates_packets() {
        let mut m = FileMap::default();
        for b in [0, 10, 25] {
            m.begin_at(b);
        }
        assert_eq!(m.local(1), (0, 1));
        assert_eq!(m.local(10), (0, 10));
        assert_eq!(m.local(11), (1, 1));
        assert_eq!(m.local(25), (1, 15));
        assert_eq!(m.local(26), (2, 1));
        assert!(m.multi());
        assert_eq!((m.current(), m.current_base()), (2, 25));
    }
}
