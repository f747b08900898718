//! Large message buffers kept for reuse, one pool per thread.
//!
//! A message larger than [`SMALL_BYTES`] needs a buffer of its size. Freeing
//! it after each message and allocating the next one afresh costs page
//! faults, and on glibc fragments the heap: RSS then grows with the length
//! of the capture, and more so with one malloc arena per thread. Kept here
//! instead, a few buffers serve message after message.
//!
//! Limits: at most [`POOL_BUFFERS`] buffers and [`POOL_BYTES`] of capacity
//! per thread; a buffer larger than [`POOL_MAX_BUFFER`] is never kept. What
//! does not fit is freed as before. The pool changes no output, only where
//! memory comes from.

use std::cell::RefCell;

/// Buffers up to this capacity stay with their direction between messages.
pub const SMALL_BYTES: usize = 64 * 1024;
/// Most buffers kept per thread.
pub const POOL_BUFFERS: usize = 32;
/// Most capacity kept per thread.
pub const POOL_BYTES: usize = 8 << 20;
/// Largest buffer kept.
pub const POOL_MAX_BUFFER: usize = 2 << 20;

#[derive(Default)]
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// An empty buffer of at least `min` bytes of capacity, if one is kept:
/// the smallest that fits.
pub fn take(min: usize) -> Option<Vec<u8>> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= min)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
        let b = p.free.swap_remove(i);
        p.bytes -= b.capacity();
        Some(b)
    })
}

/// Keeps `buf` (emptied) for a later [`take`], or frees it when the pool
/// is full or it is too large. A full pool trades its smallest buffer for a
/// larger one, so that what is kept serves the largest messages.
pub fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if cap <= SMALL_BYTES || cap > POOL_MAX_BUFFER {
        return;
    }
    buf.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        while p.free.len() >= POOL_BUFFERS || p.bytes + cap > POOL_BYTES {
            let Some((i, smallest)) = p
                .free
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, b)| (i, b.capacity()))
            else {
                return;
            };
            if smallest >= cap {
                return;
            }
            p.free.swap_remove(i);
            p.bytes -= smallest;
        }
        p.bytes += cap;
        p.free.push(buf);
    });
}

/// Capacity kept by this thread's pool.
pub fn kept_bytes() -> usize {
    POOL.with(|p| p.borrow().bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_large_buffers_within_its_limits_and_hands_out_the_best_fit() {
        // Each test runs on its own thread: a fresh pool.
        give(Vec::with_capacity(SMALL_BYTES));
        give(Vec::with_capacity(POOL_MAX_BUFFER + 1));
        assert_eq!(kept_bytes(), 0, "small and oversized buffers are not kept");
        for size in [256 << 10, 128 << 10, 1 << 20] {
            let mut b = Vec::with_capacity(size);
            b.extend_from_slice(b"old");
            give(b);
        }
        let b = take(100 << 10).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 128 << 10);
        assert!(take(2 << 20).is_none());
        while take(0).is_some() {}
        assert_eq!(kept_bytes(), 0);
        // Full: a smaller buffer is dropped; a larger one evicts the
        // smallest ones until it fits.
        for _ in 0..POOL_BYTES / (1 << 20) {
            give(Vec::with_capacity(1 << 20));
        }
        assert_eq!(kept_bytes(), POOL_BYTES);
        give(Vec::with_capacity(200 << 10));
        assert_eq!(kept_bytes(), POOL_BYTES);
        give(Vec::with_capacity(POOL_MAX_BUFFER));
        assert_eq!(kept_bytes(), POOL_BYTES);
        assert!(take(POOL_MAX_BUFFER).is_some());
        // At most POOL_BUFFERS buffers, however small.
        while take(0).is_some() {}
        for _ in 0..POOL_BUFFERS + 5 {
            give(Vec::with_capacity(SMALL_BYTES + 1));
        }
        let mut n = 0;
        while take(0).is_some() {
            n += 1;
        }
        assert_eq!(n, POOL_BUFFERS);
    }
}
