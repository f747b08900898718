//! Where a direction's stream offsets sit in TCP sequence space.

/// The sequence number of stream offset 0, once known: the one map from
/// stream offsets (which never wrap) to TCP sequence numbers (which do),
/// for the flow table and for the stages after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqMap {
    base: Option<u32>,
}

impl SeqMap {
    /// Stream offset 0 is sequence number `base`.
    pub fn new(base: u32) -> Self {
        SeqMap { base: Some(base) }
    }

    /// Whether the sequence number of offset 0 is known.
    pub fn is_known(&self) -> bool {
        self.base.is_some()
    }

    /// Learns the map from one byte: stream offset `offset` is `seq`.
    /// Keeps what was known before.
    pub fn learn(&mut self, offset: u64, seq: u32) {
        self.base.get_or_insert(seq.wrapping_sub(offset as u32));
    }

    /// Sets the map from one byte, replacing what was known.
    pub fn set(&mut self, offset: u64, seq: u32) {
        self.base = Some(seq.wrapping_sub(offset as u32));
    }

    /// The sequence number of stream offset `offset`, if known.
    pub fn seq_at(&self, offset: u64) -> Option<u32> {
        self.base.map(|b| b.wrapping_add(offset as u32))
    }

    /// The sequence number of `offset`, or `offset` itself (truncated) while
    /// the map is unknown: what records show before the first sequence
    /// number is seen.
    pub fn seq_or_offset(&self, offset: u64) -> u32 {
        self.base.unwrap_or(0).wrapping_add(offset as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_keeps_the_first_fact() {
        let mut m = SeqMap::default();
        assert_eq!(m.seq_at(5), None);
        assert_eq!(m.seq_or_offset(5), 5);
        m.learn(10, 4);
        assert_eq!(m.seq_at(10), Some(4));
        assert_eq!(m.seq_at(0), Some(4u32.wrapping_sub(10)));
        m.learn(0, 99);
        assert_eq!(m.seq_at(10), Some(4), "learn keeps what was known");
        m.set(0, 99);
        assert_eq!(m.seq_at(1), Some(100));
    }
}
