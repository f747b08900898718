//! Synthetic captures for tests and benchmarks.
//!
//! Written independently of the analyzer (it never uses `crate::ws`,
//! `crate::http`, ...), so that a test which generates a capture here and
//! decodes it with the pipeline is evidence about the pipeline, not a
//! round trip through shared code.
//!
//! - [`pcap`]: classic pcap and pcapng writers.
//! - [`packet`]: Ethernet + IPv4/IPv6 + TCP packet builder.
//! - [`conn`]: a scripted TCP connection (handshake, segments, FIN, RST).
//! - [`ws`]: WebSocket handshake, frame and permessage-deflate encoders.
//! - [`gen`]: the random session generator behind `wssniff-gen`, with a
//!   ground-truth JSON Lines file.

pub mod conn;
pub mod gen;
pub mod packet;
pub mod pcap;
pub mod ws;

/// The generator emits no anomalies: it writes captures, it does not read them.
pub const ANOMALIES: &[(&str, &str)] = &[];

/// A small, fast, seedable PRNG (xorshift64*), seeded through splitmix64.
///
/// Its own so that generated captures stay byte-identical whatever version
/// of `rand` the project ends up on.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 spreads small seeds (0, 1, 2...) over the whole state,
        // and never leaves the state at 0 (a fixed point of xorshift).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for test data, and branch-free.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (never for `p <= 0`, always for `p >= 1`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Fills `buf` with random bytes, eight at a time.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_seed_dependent() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut r = Rng::new(0);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.range(5, 7);
            assert!((5..=7).contains(&v));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.range(3, 3), 3);
    }

    #[test]
    fn fill_covers_odd_lengths() {
        let mut r = Rng::new(1);
        let mut buf = [0u8; 13];
        r.fill(&mut buf);
        // 13 zero bytes from a good PRNG would be a 2^-104 event.
        assert!(buf.iter().filter(|&&b| b != 0).count() > 6);
    }
}
