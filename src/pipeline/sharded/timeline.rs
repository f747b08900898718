//! What a worker's flow table did, seen from outside it: a
//! [`TableObserver`] that gives the ordering key of the records a close
//! emits (`list`, `order`) to the worker's [`ShardSink`](super::outbox::ShardSink),
//! and logs the table's [`Level`]s for the merger's peaks (see "Ordering key"
//! and "Peaks" in the module documentation).

use super::outbox::Key;
use crate::tcp::TableObserver;
use crate::types::PacketNo;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// The flow count and buffer memory over a stretch of processing: the
/// largest values reached in it and the values at its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Level {
    /// Largest flow count in the stretch.
    pub(super) peak_flows: u64,
    /// Flow count at its end.
    pub(super) flows: u64,
    /// Largest buffer memory (bytes) in the stretch.
    pub(super) peak_memory: u64,
    /// Buffer memory (bytes) at its end.
    pub(super) memory: u64,
}

impl Level {
    /// A stretch that changed nothing from `self`'s end.
    pub(super) fn flat(&self) -> Level {
        Level {
            peak_flows: self.flows,
            flows: self.flows,
            peak_memory: self.memory,
            memory: self.memory,
        }
    }
}

/// The key the worker's next record gets: set per packet and phase by the
/// worker's loop, per close by the table's observer. Single-threaded (`Rc`):
/// each worker owns its own.
pub(super) type KeyCell = Rc<Cell<Key>>;

/// The largest values since the last step, and the levels after each flow
/// closed in order since then.
#[derive(Default)]
pub(super) struct Watermarks {
    peak_flows: u64,
    peak_memory: u64,
    closing: (u8, PacketNo),
    /// The single table interleaves these closes across shards, and a close
    /// can briefly raise memory (flushing into a new history ring), so each
    /// is its own step.
    pub(super) closes: Vec<(u8, PacketNo, Level)>,
}

impl Watermarks {
    /// The stretch since the last level taken, ending at (`flows`,
    /// `memory`); the next stretch starts there.
    pub(super) fn take(&mut self, flows: u64, memory: u64) -> Level {
        let l = Level {
            peak_flows: self.peak_flows.max(flows),
            flows,
            peak_memory: self.peak_memory.max(memory),
            memory,
        };
        self.peak_flows = flows;
        self.peak_memory = memory;
        l
    }
}

/// The observer a worker installs on its back analyzer's flow table.
pub(super) struct Timeline {
    pub(super) key: KeyCell,
    pub(super) marks: Rc<RefCell<Watermarks>>,
}

impl TableObserver for Timeline {
    fn memory_rose(&mut self, bytes: u64) {
        let mut m = self.marks.borrow_mut();
        m.peak_memory = m.peak_memory.max(bytes);
    }
    fn flows_rose(&mut self, flows: u64) {
        let mut m = self.marks.borrow_mut();
        m.peak_flows = m.peak_flows.max(flows);
    }
    fn closing(&mut self, list: u8, order: PacketNo) {
        let (packet, phase, ..) = self.key.get();
        self.key.set((packet, phase, list, order, 0));
        self.marks.borrow_mut().closing = (list, order);
    }
    fn closed(&mut self, flows: u64, memory: u64) {
        let mut m = self.marks.borrow_mut();
        let l = m.take(flows, memory);
        let (list, order) = m.closing;
        m.closes.push((list, order, l));
    }
}
