//! Flow storage: a slab of slots threaded on intrusive recency lists, and the
//! hasher for the 4-tuple map.
//!
//! Each flow sits on exactly one list, chosen by its timeout class; a list is
//! ordered by last activity, oldest at the head. Timeouts then only look at
//! list heads (amortized O(expired)), and LRU eviction compares at most three
//! heads, so both are O(1) per flow however many flows are live.

use std::hash::{BuildHasher, Hasher};

pub(super) const NIL: u32 = u32::MAX;
pub(super) const CLASSES: usize = 3;

struct Slot<T> {
    item: Option<T>,
    prev: u32,
    next: u32,
    class: u8,
    /// Value of the table's touch counter at the last touch: global recency.
    stamp: u64,
}

/// Bytes one slot of a `Slab<T>` takes at worst: its vector may have just
/// doubled (slots are reused, never freed, so this is the high-water cost).
pub(super) const fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>() * 2
}

pub(super) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    head: [u32; CLASSES],
    tail: [u32; CLASSES],
    clock: u64,
    live: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            head: [NIL; CLASSES],
            tail: [NIL; CLASSES],
            clock: 0,
            live: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Stores `item` as the most recent entry of list `class`.
    pub fn insert(&mut self, item: T, class: u8) -> u32 {
        let slot = Slot {
            item: Some(item),
            prev: NIL,
            next: NIL,
            class,
            stamp: 0,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        self.push_back(idx, class);
        idx
    }

    pub fn remove(&mut self, idx: u32) -> Option<T> {
        let item = self.slots.get_mut(idx as usize)?.item.take()?;
        self.unlink(idx);
        self.free.push(idx);
        self.live -= 1;
        Some(item)
    }

    pub fn get(&self, idx: u32) -> Option<&T> {
        self.slots.get(idx as usize)?.item.as_ref()
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.slots.get_mut(idx as usize)?.item.as_mut()
    }

    /// Marks `idx` most recently used and files it under `class`.
    pub fn touch(&mut self, idx: u32, class: u8) {
        if self.get(idx).is_none() {
            return;
        }
        self.unlink(idx);
        self.push_back(idx, class);
    }

    /// Least recently used entry of one list.
    pub fn oldest(&self, class: usize) -> Option<u32> {
        self.head.get(class).copied().filter(|&h| h != NIL)
    }

    /// Least recently used entry over all lists.
    pub fn oldest_overall(&self) -> Option<u32> {
        (0..CLASSES)
            .filter_map(|c| self.oldest(c))
            .min_by_key(|&i| self.slots.get(i as usize).map_or(u64::MAX, |s| s.stamp))
    }

    /// Live indices (in no particular order).
    pub fn indices(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&i| self.get(i).is_some())
            .collect()
    }

    fn push_back(&mut self, idx: u32, class: u8) {
        let c = (class as usize).min(CLASSES - 1);
        self.clock += 1;
        let old_tail = self.tail[c];
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.prev = old_tail;
            s.next = NIL;
            s.class = c as u8;
            s.stamp = self.clock;
        }
        match self.slots.get_mut(old_tail as usize) {
            Some(t) => t.next = idx,
            None => self.head[c] = idx,
        }
        self.tail[c] = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let Some(s) = self.slots.get(idx as usize) else {
            return;
        };
        let (prev, next, c) = (s.prev, s.next, (s.class as usize).min(CLASSES - 1));
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if self.head[c] == idx {
                    self.head[c] = next;
                }
            }
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if self.tail[c] == idx {
                    self.tail[c] = prev;
                }
            }
        }
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.prev = NIL;
            s.next = NIL;
        }
    }
}

/// A multiply-fold hasher (after foldhash/ahash's fallback), keyed per table
/// from std's random state so crafted addresses cannot force collisions.
#[derive(Clone, Copy)]
pub(super) struct FoldHasher {
    state: u64,
}

const MUL: u64 = 0x5851_f42d_4c95_7f2d;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = fold_mul(self.state ^ i, MUL);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.state, MUL ^ 0x9e37_79b9_7f4a_7c15).rotate_left(23)
    }
}

#[derive(Clone, Copy)]
pub(super) struct FoldState {
    seed: u64,
}

impl FoldState {
    pub fn random() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x7c9_u64);
        FoldState { seed: seed | 1 }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { state: self.seed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_recency_order_and_reuse_slots() {
        let mut s: Slab<u32> = Slab::new();
        let a = s.insert(10, 0);
        let b = s.insert(20, 0);
        let c = s.insert(30, 1);
        assert_eq!(s.oldest(0), Some(a));
        assert_eq!(s.oldest_overall(), Some(a));
        s.touch(a, 0);
        assert_eq!(s.oldest(0), Some(b));
        assert_eq!(s.oldest_overall(), Some(b));
        s.touch(b, 2);
        assert_eq!(s.oldest(0), Some(a));
        assert_eq!(s.oldest(2), Some(b));
        assert_eq!(s.oldest_overall(), Some(c));
        assert_eq!(s.remove(c), Some(30));
        assert_eq!(s.remove(c), None);
        assert_eq!(s.oldest(1), None);
        let d = s.insert(40, 1);
        assert_eq!(d, c, "freed slot is reused");
        assert_eq!(s.len(), 3);
        assert_eq!(s.oldest_overall(), Some(a));
        let mut idx = s.indices();
        idx.sort();
        assert_eq!(idx, vec![a, b, c]);
    }

    #[test]
    fn removing_middle_keeps_list_intact() {
        let mut s: Slab<u32> = Slab::new();
        let ids: Vec<u32> = (0..5).map(|i| s.insert(i, 1)).collect();
        s.remove(ids[2]);
        s.remove(ids[0]);
        assert_eq!(s.oldest(1), Some(ids[1]));
        s.remove(ids[1]);
        assert_eq!(s.oldest(1), Some(ids[3]));
        s.remove(ids[4]);
        s.remove(ids[3]);
        assert_eq!(s.oldest(1), None);
        let n = s.insert(9, 1);
        assert_eq!(s.oldest(1), Some(n));
    }

    #[test]
    fn hasher_spreads_nearby_keys() {
        let st = FoldState { seed: 1 };
        let h1 = st.hash_one(("10.0.0.1", 80u16));
        let h2 = st.hash_one(("10.0.0.1", 81u16));
        assert_ne!(h1, h2);
        assert_ne!(h1 >> 57, h2 >> 57);
    }
}
