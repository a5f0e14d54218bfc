//! EMS, the reference's `calculate_exactmatch` (§2.4), on a 0–100 scale.
//!
//! Despite its name it is a precision-like overlap: the number of *distinct* reference words that
//! occur in the candidate, divided by the number of candidate words (with repeats). A verbatim copy
//! of a reference that repeats a word therefore scores below 100 (§2.14 #5).

use crate::hash::Interner;
use crate::normalize::Normalized;

/// EMS from already normalised words.
pub fn ems_words<'a>(
    candidate: impl ExactSizeIterator<Item = &'a str>,
    reference: impl ExactSizeIterator<Item = &'a str>,
) -> f64 {
    let total = candidate.len();
    if total == 0 {
        return 0.0;
    }
    let mut refs = Interner::with_capacity(reference.len());
    for w in reference {
        refs.intern(w);
    }
    let mut seen = vec![false; refs.len()];
    let mut count = 0usize;
    for w in candidate {
        if let Some(id) = refs.get(w) {
            let s = &mut seen[id as usize];
            if !*s {
                *s = true;
                count += 1;
            }
        }
    }
    100.0 * (count as f64 / total as f64)
}

/// EMS of two normalised inputs, using the word hashes the normaliser already computed and a
/// stack table for typical answer lengths.
pub fn ems_normalized(candidate: &Normalized, reference: &Normalized) -> f64 {
    let total = candidate.len();
    if total == 0 {
        return 0.0;
    }
    const STACK_SLOTS: usize = 512;
    let cap = (reference.len() * 2).next_power_of_two().max(16);
    let mut stack = [(0u64, ""); STACK_SLOTS];
    let mut heap = Vec::new();
    let slots: &mut [(u64, &str)] = if cap <= STACK_SLOTS {
        &mut stack[..cap]
    } else {
        heap.resize(cap, (0u64, ""));
        &mut heap
    };
    // `""` marks an empty slot: normalised words are never empty. `seen` flags the slots of
    // reference words already found in the candidate (each distinct word counts once).
    let mask = cap - 1;
    let mut seen = [0u64; STACK_SLOTS / 64];
    let mut seen_heap = Vec::new();
    let seen: &mut [u64] = if cap <= STACK_SLOTS {
        &mut seen[..cap.div_ceil(64)]
    } else {
        seen_heap.resize(cap.div_ceil(64), 0u64);
        &mut seen_heap
    };
    for (h, w) in reference.hashed_words() {
        let mut i = h as usize & mask;
        loop {
            let (sh, sw) = slots[i];
            if sw.is_empty() {
                slots[i] = (h, w);
                break;
            }
            if sh == h && sw == w {
                break;
            }
            i = (i + 1) & mask;
        }
    }
    let mut count = 0usize;
    for (h, w) in candidate.hashed_words() {
        let mut i = h as usize & mask;
        loop {
            let (sh, sw) = slots[i];
            if sw.is_empty() {
                break;
            }
            if sh == h && sw == w {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    count += 1;
                }
                break;
            }
            i = (i + 1) & mask;
        }
    }
    100.0 * (count as f64 / total as f64)
}

/// `calculate_exactmatch(candidate, reference)`.
pub fn calculate_exactmatch(candidate: &str, reference: &str) -> f64 {
    let mut c = Normalized::new();
    let mut r = Normalized::new();
    c.normalize(candidate);
    r.normalize(reference);
    ems_normalized(&c, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_and_plain_paths_agree() {
        let long: String = (0..700).map(|i| format!("w{} ", i % 300)).collect();
        for (c, r) in [
            ("a b c b", "b c d"),
            (long.as_str(), "w1 w2 w3 zz"),
            ("w5 w6", long.as_str()),
        ] {
            let (mut nc, mut nr) = (Normalized::new(), Normalized::new());
            nc.normalize(c);
            nr.normalize(r);
            assert_eq!(ems_normalized(&nc, &nr), ems_words(nc.words(), nr.words()));
        }
    }

    #[test]
    fn distinct_reference_words_over_candidate_tokens() {
        assert_eq!(
            calculate_exactmatch("heart failure", "heart failure"),
            100.0
        );
        // Candidate repeats a word: 1 distinct reference word present / 2 tokens.
        assert_eq!(calculate_exactmatch("heart heart", "heart"), 50.0);
        assert_eq!(calculate_exactmatch("heart attack", "heart"), 50.0);
        assert_eq!(calculate_exactmatch("", "heart"), 0.0);
    }
}
