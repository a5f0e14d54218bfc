//! A tiny open-addressing string set, used for word look-ups in EMS, BLEU and the contraction table.
//!
//! The scorer looks up every normalised word; std's SipHash `HashMap` costs more than the rest of the
//! per-word work, and answers are short, so a fixed-capacity FxHash-style table allocated once per
//! call is both faster and dependency-free.

/// FxHash-like word hash (not DoS resistant; inputs are bounded by the caller's request size).
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    }
    let rem = chunks.remainder();
    let r = rem.len();
    if r > 0 {
        // Fixed-width (overlapping) loads instead of copying the tail into a zeroed buffer: the
        // variable-length copy followed by an 8-byte load stalls store forwarding, and most words
        // are shorter than 8 bytes, so that stall was most of the hash's cost. The length is
        // already mixed in, so the overlap loses nothing.
        let v = if r >= 4 {
            let lo = u32::from_le_bytes([rem[0], rem[1], rem[2], rem[3]]) as u64;
            let hi = u32::from_le_bytes([rem[r - 4], rem[r - 3], rem[r - 2], rem[r - 1]]) as u64;
            lo | (hi << 32)
        } else {
            rem[0] as u64 | ((rem[r / 2] as u64) << 8) | ((rem[r - 1] as u64) << 16)
        };
        h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    }
    // Final avalanche so the low bits used for the slot index depend on every input bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Interns strings to dense ids `0..len` (first-seen order).
#[derive(Debug)]
pub(crate) struct Interner<'a> {
    slots: Vec<u32>,
    words: Vec<&'a str>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl<'a> Interner<'a> {
    /// A table for at most `max_words` distinct words.
    pub(crate) fn with_capacity(max_words: usize) -> Interner<'a> {
        let cap = (max_words * 2).next_power_of_two().max(16);
        Interner {
            slots: vec![EMPTY; cap],
            words: Vec::with_capacity(max_words),
            mask: cap - 1,
        }
    }

    /// The id of `w`, inserting it if new. Returns `(id, inserted)`.
    #[inline]
    pub(crate) fn intern(&mut self, w: &'a str) -> (u32, bool) {
        let mut i = hash_bytes(w.as_bytes()) as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                let id = self.words.len() as u32;
                self.slots[i] = id;
                self.words.push(w);
                return (id, true);
            }
            if self.words[s as usize] == w {
                return (s, false);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The id of `w` if present.
    #[inline]
    pub(crate) fn get(&self, w: &str) -> Option<u32> {
        let mut i = hash_bytes(w.as_bytes()) as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if self.words[s as usize] == w {
                return Some(s);
            }
            i = (i + 1) & self.mask;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_densely_and_finds_again() {
        let words = ["a", "bb", "a", "ccc", "bb", "", "dddddddddddddddd"];
        let mut t = Interner::with_capacity(words.len());
        let ids: Vec<u32> = words.iter().map(|w| t.intern(w).0).collect();
        assert_eq!(ids, [0, 1, 0, 2, 1, 3, 4]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.get("ccc"), Some(2));
        assert_eq!(t.get("cc"), None);
    }
}
