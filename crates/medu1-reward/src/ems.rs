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

/// EMS of two normalised inputs.
pub fn ems_normalized(candidate: &Normalized, reference: &Normalized) -> f64 {
    ems_words(candidate.words(), reference.words())
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
