//! Payload (un)masking, RFC 6455 section 5.3. XOR is its own inverse, so the
//! same functions mask and unmask.

/// The key as seen from payload position `offset`: byte i of the result
/// applies to payload position `offset + i`.
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

fn pattern64(k: [u8; 4]) -> u64 {
    u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]])
}

/// XORs `buf` (which starts at payload position `offset`) with the mask key.
pub fn unmask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotated(key, offset);
    let pattern = pattern64(k);
    // Whole 32-byte blocks as four u64 words: the compiler turns this into
    // vector XORs. Block sizes are multiples of 4, so the key phase is kept.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            word.copy_from_slice(&(u64::from_ne_bytes(w) ^ pattern).to_ne_bytes());
        }
    }
    for (b, m) in blocks.into_remainder().iter_mut().zip(k.iter().cycle()) {
        *b ^= m;
    }
}

/// Appends the unmasked copy of `src` (starting at payload position `offset`)
/// to `dst`: the one copy the payload bytes get.
pub fn unmask_extend(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    let k = rotated(key, offset);
    let pattern = pattern64(k);
    dst.reserve(src.len());
    // XOR while copying, a 32-byte block at a time (one pass, no zero-fill).
    let mut blocks = src.chunks_exact(32);
    for s in &mut blocks {
        let mut block = [0u8; 32];
        for (dw, sw) in block.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(sw);
            dw.copy_from_slice(&(u64::from_ne_bytes(w) ^ pattern).to_ne_bytes());
        }
        dst.extend_from_slice(&block);
    }
    dst.extend(
        blocks
            .remainder()
            .iter()
            .zip(k.iter().cycle())
            .map(|(s, m)| s ^ m),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_reference_for_every_length_offset_and_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let backing: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        for align in 0..=7 {
            for len in 0..=64 {
                for offset in 0..=3 {
                    let mut fast = backing.clone();
                    let mut slow = backing.clone();
                    unmask(&mut fast[align..align + len], key, offset);
                    reference(&mut slow[align..align + len], key, offset);
                    assert_eq!(fast, slow, "align {align} len {len} offset {offset}");

                    let mut dst = vec![0xaa; align];
                    unmask_extend(&mut dst, &backing[align..align + len], key, offset);
                    assert_eq!(&dst[..align], &vec![0xaa; align][..]);
                    assert_eq!(&dst[align..], &slow[align..align + len]);
                }
            }
        }
    }

    #[test]
    fn large_offsets_use_the_phase() {
        let key = [1, 2, 4, 8];
        let mut a = vec![0u8; 100];
        unmask(&mut a, key, 4_000_000_002);
        assert_eq!(&a[..4], &[4, 8, 1, 2]);
    }

    #[test]
    fn split_unmasking_equals_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = data.clone();
        unmask(&mut whole, key, 0);
        for split in [1, 3, 7, 33, 500, 999] {
            let mut parts = Vec::new();
            unmask_extend(&mut parts, &data[..split], key, 0);
            unmask_extend(&mut parts, &data[split..], key, split);
            assert_eq!(parts, whole, "split {split}");
        }
    }

    #[test]
    fn masking_twice_restores() {
        let mut buf: Vec<u8> = (0..77).collect();
        unmask(&mut buf, [9, 9, 1, 0], 3);
        assert_ne!(buf, (0..77).collect::<Vec<u8>>());
        unmask(&mut buf, [9, 9, 1, 0], 3);
        assert_eq!(buf, (0..77).collect::<Vec<u8>>());
    }
}
