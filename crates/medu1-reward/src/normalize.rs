//! The VQA answer normaliser `normalize_word` (§2.3), with all of the reference's quirks.
//!
//! Both EMS and Rouge-L compare normalised words, so this runs twice per free-text sample in the
//! training loop. The reference makes 21 `str.replace` passes and a regex substitution; here the
//! per-character decisions are computed up front and applied in two linear passes, and words are
//! handed to the metrics as slices (no joined string) unless the caller wants the string.
//!
//! Quirks kept on purpose (§2.14 #7–#9):
//! * a digit-comma-digit anywhere (Unicode `\d`) switches *all* punctuation to deletion;
//! * otherwise a punctuation character is deleted everywhere when it is followed or preceded by a
//!   space anywhere in the *original* text, and replaced by a space everywhere else;
//! * the period rule deletes a `.` not followed by a Unicode decimal digit (the intended
//!   look-behind `(?!<=\d)` is a no-op look-ahead), and only the first 32 of them (`re.UNICODE`
//!   passed as `count`).

use std::sync::LazyLock;

use crate::digits::is_decimal;
use crate::hash::hash_bytes;
use crate::py_split;

/// The reference's `punct` list (21 characters; `. : ' * % # & $ ~ |` are not in it).
pub const PUNCT: [u8; 21] = [
    b';', b'/', b'[', b']', b'"', b'{', b'}', b'(', b')', b'=', b'+', b'\\', b'_', b'-', b'>',
    b'<', b'@', b'`', b',', b'?', b'!',
];

/// How many removable periods the reference deletes (`re.UNICODE` == 32 passed as `count`).
pub const PERIOD_COUNT: usize = 32;

/// Byte classes of the ASCII fast path.
const PLAIN: u8 = 0;
const PUNCT_CLASS: u8 = 1;
const PERIOD: u8 = 2;
const SPACE: u8 = 3;

static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < PUNCT.len() {
        t[PUNCT[i] as usize] = PUNCT_CLASS;
        i += 1;
    }
    t[b'.' as usize] = PERIOD;
    // Python `str.isspace` within ASCII: \t \n \v \f \r, U+001C..U+001F and space.
    let ws = [9u8, 10, 11, 12, 13, 0x1c, 0x1d, 0x1e, 0x1f, b' '];
    let mut k = 0;
    while k < ws.len() {
        t[ws[k] as usize] = SPACE;
        k += 1;
    }
    t
};

const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

#[inline]
fn load8(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// The high bit of each byte of `x` (ASCII bytes only) that is a letter `A-Z` / `a-z`.
#[inline]
fn ascii_letters(x: u64) -> u64 {
    const fn splat(c: u8) -> u64 {
        0x0101_0101_0101_0101 * c as u64
    }
    // Per byte, with y = x | 0x20 (< 0x80): `(y | 0x80) - 0x61` keeps its high bit iff
    // y >= 'a', `0xfa - y` iff y <= 'z'; neither borrows across bytes.
    let y = x | splat(0x20);
    ((y | HIGH) - splat(b'a')) & (splat(0xfa) - y) & HIGH
}

/// The high bit of each byte of `x` (ASCII bytes only) equal to `c`, exactly (no false positives
/// from borrows).
#[inline]
fn bytes_equal(x: u64, c: u8) -> u64 {
    let t = x ^ (0x0101_0101_0101_0101 * c as u64);
    !(((t & LOW7) + LOW7) | t | LOW7)
}

/// What the ASCII pass does with a byte: copy it lower-cased, skip it (deleted punctuation),
/// split words there (whitespace, punctuation replaced by a space), or apply the period rule.
/// Punctuation entries are set per call.
const COPY: u8 = 0;
const SKIP: u8 = 1;
const SPLIT: u8 = 2;
const DOT: u8 = 3;

static ACTION: [u8; 256] = {
    let mut t = [COPY; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match CLASS[i] {
            SPACE => SPLIT,
            PERIOD => DOT,
            _ => COPY,
        };
        i += 1;
    }
    t
};

/// Byte -> index in [`PUNCT`] + 1 (0 = not punctuation).
static PUNCT_IDX: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < PUNCT.len() {
        t[PUNCT[i] as usize] = i as u8 + 1;
        i += 1;
    }
    t
};

/// The VQA contraction table of the reference (120 entries), sorted by key for binary search.
/// The capitalised keys (`Id've`, `I'dve`, `Im`, `Ive`) can never match: lookups happen after
/// lower-casing. They are kept so the table is the reference's.
const CONTRACTIONS: [(&str, &str); 120] = [
    ("'ow'sat", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("I'dve", "I'd've"),
    ("Id've", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt", "couldn't"),
    ("couldnt've", "couldn't've"),
    ("couldve", "could've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadn'tve", "hadn't've"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("he'dve", "he'd've"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("isnt", "isn't"),
    ("it'dve", "it'd've"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightn'tve", "mightn't've"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("shant", "shan't"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shed've", "she'd've"),
    ("shouldn'tve", "shouldn't've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldve", "should've"),
    ("somebody'd", "somebodyd"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyd've", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someone'dve", "someone'd've"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("something'dve", "something'd've"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("there'dve", "there'd've"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("they'dve", "they'd've"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("we'dve", "we'd've"),
    ("wed've", "we'd've"),
    ("werent", "weren't"),
    ("weve", "we've"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("who'dve", "who'd've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldn'tve", "wouldn't've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldve", "would've"),
    ("y'all'dve", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'allll", "y'all'll"),
    ("yall", "y'all"),
    ("yall'd've", "y'all'd've"),
    ("yall'll", "y'all'll"),
    ("you'dve", "you'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// Open addressing over [`CONTRACTIONS`]: slot -> entry index + 1 (0 = empty). Ordinary words
/// rarely get here: [`SPECIAL`] rejects them first.
static CONTRACTION_SLOTS: LazyLock<[u8; 512]> = LazyLock::new(|| {
    let mut slots = [0u8; 512];
    for (i, (k, _)) in CONTRACTIONS.iter().enumerate() {
        let mut s = hash_bytes(k.as_bytes()) as usize & 511;
        while slots[s] != 0 {
            s = (s + 1) & 511;
        }
        slots[s] = i as u8 + 1;
    }
    slots
});

/// `contractions.get(w)` given `hash_bytes(w)`.
#[inline]
fn contraction_hashed(w: &[u8], h: u64) -> Option<&'static str> {
    // Keys are 2..=14 bytes long (checked by a unit test).
    if !(2..=14).contains(&w.len()) {
        return None;
    }
    let slots = &*CONTRACTION_SLOTS;
    let mut s = h as usize & 511;
    loop {
        let e = slots[s];
        if e == 0 {
            return None;
        }
        let (k, v) = CONTRACTIONS[e as usize - 1];
        if k.as_bytes() == w {
            return Some(v);
        }
        s = (s + 1) & 511;
    }
}

/// `contractions.get(w)`.
pub fn contraction(w: &str) -> Option<&'static str> {
    contraction_hashed(w.as_bytes(), hash_bytes(w.as_bytes()))
}

/// `manual_map.get(w)`: number words to digits.
#[inline]
pub fn manual_map(w: &str) -> Option<&'static str> {
    manual_map_bytes(w.as_bytes())
}

#[inline]
fn manual_map_bytes(w: &[u8]) -> Option<&'static str> {
    NUMBER_WORDS
        .iter()
        .find(|(k, _)| k.as_bytes() == w)
        .map(|&(_, v)| v)
}

#[inline]
fn is_article(w: &[u8]) -> bool {
    ARTICLES.iter().any(|a| a.as_bytes() == w)
}

/// One output word: a span of the lower-cased buffer or a replacement from a table, with its
/// hash (computed once here and reused by the contraction look-up and by EMS).
#[derive(Debug, Clone, Copy)]
struct Tok {
    start: u32,
    end: u32,
    fixed: Option<&'static str>,
    hash: u64,
}

/// What happens to one lower-cased word.
enum WordOut {
    Drop,
    Fixed(&'static str),
    Keep(u64),
}

/// The reference's `manualMap`: number words to digits.
const NUMBER_WORDS: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// The reference's `articles`, dropped from the words.
const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// A filter on (length, first byte, last byte) over every word the tables can change (number
/// words, articles, contraction keys): bit `last & 63` of `SPECIAL[(len - 1) * 32 + (first & 31)]`.
/// It rejects almost every ordinary word, which then only needs its hash.
static SPECIAL: [u64; 14 * 32] = {
    const fn add(t: &mut [u64; 14 * 32], w: &str) {
        let b = w.as_bytes();
        t[(b.len() - 1) * 32 + (b[0] & 31) as usize] |= 1 << (b[b.len() - 1] & 63);
    }
    let mut t = [0u64; 14 * 32];
    let mut i = 0;
    while i < CONTRACTIONS.len() {
        add(&mut t, CONTRACTIONS[i].0);
        i += 1;
    }
    i = 0;
    while i < NUMBER_WORDS.len() {
        add(&mut t, NUMBER_WORDS[i].0);
        i += 1;
    }
    i = 0;
    while i < ARTICLES.len() {
        add(&mut t, ARTICLES[i]);
        i += 1;
    }
    t
};

#[inline]
fn maybe_special(w: &[u8]) -> bool {
    let n = w.len();
    (1..=14).contains(&n)
        && SPECIAL[(n - 1) * 32 + (w[0] & 31) as usize] & (1 << (w[n - 1] & 63)) != 0
}

/// Number words, articles, contractions (in the reference's order).
#[inline]
fn classify(w: &[u8]) -> WordOut {
    if !maybe_special(w) {
        return WordOut::Keep(hash_bytes(w));
    }
    if let Some(m) = manual_map_bytes(w) {
        return WordOut::Fixed(m);
    }
    if is_article(w) {
        return WordOut::Drop;
    }
    let h = hash_bytes(w);
    match contraction_hashed(w, h) {
        Some(c) => WordOut::Fixed(c),
        None => WordOut::Keep(h),
    }
}

/// Reusable buffers holding the normalised words of one input.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    buf: String,
    scratch: Vec<u8>,
    toks: Vec<Tok>,
}

impl Normalized {
    pub fn new() -> Normalized {
        Normalized::default()
    }

    /// The normalised words (what `normalize_word(x).lower().strip().split()` yields).
    pub fn words(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.toks.iter().map(|t| self.word(t))
    }

    #[inline]
    fn word(&self, t: &Tok) -> &str {
        match t.fixed {
            Some(s) => s,
            None => &self.buf[t.start as usize..t.end as usize],
        }
    }

    /// The words with their [`hash_bytes`] values.
    pub(crate) fn hashed_words(&self) -> impl ExactSizeIterator<Item = (u64, &str)> + '_ {
        self.toks.iter().map(|t| (t.hash, self.word(t)))
    }

    pub fn len(&self) -> usize {
        self.toks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    /// `normalize_word(x)` as a string: the words joined by single spaces.
    pub fn joined(&self) -> String {
        let mut out = String::with_capacity(self.buf.len());
        for (i, w) in self.words().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(w);
        }
        out
    }

    /// Normalises `orig` into these buffers.
    pub fn normalize(&mut self, orig: &str) {
        self.normalize_limited(orig, usize::MAX);
    }

    /// Normalises `orig`, but may stop once `max_words` words were produced (then returns
    /// `false` and holds only a prefix of the words). Callers that only need to know whether the
    /// word count stays below a bound use this to skip the rest of a long answer.
    pub fn normalize_limited(&mut self, orig: &str, max_words: usize) -> bool {
        if orig.is_ascii() {
            self.normalize_ascii(orig.as_bytes(), max_words)
        } else {
            self.normalize_general(orig);
            true
        }
    }

    /// Finishes the word `out[start..end]` (number words, articles, contractions) and returns
    /// where the next word starts: `end` when the bytes stay in the buffer as a span, `start` when
    /// the word was replaced from a table or dropped (it needs no bytes).
    #[inline]
    fn push_word(toks: &mut Vec<Tok>, out: &[u8], start: usize, end: usize) -> usize {
        if start == end {
            return end;
        }
        match classify(&out[start..end]) {
            WordOut::Keep(hash) => {
                toks.push(Tok {
                    start: start as u32,
                    end: end as u32,
                    fixed: None,
                    hash,
                });
                end
            }
            WordOut::Fixed(f) => {
                toks.push(Tok {
                    start: 0,
                    end: 0,
                    fixed: Some(f),
                    hash: hash_bytes(f.as_bytes()),
                });
                start
            }
            WordOut::Drop => start,
        }
    }

    /// The same algorithm fused into one pass for ASCII input (the common case). Punctuation is
    /// rare, so the decisions come from one scan that only stops at punctuation; then a per-call
    /// action table drives a single copy loop that lower-cases, deletes or splits at each byte.
    /// (Plain byte loops: per-space `memchr` calls and per-word `memmove`s cost more than the
    /// bytes themselves on ~6-byte words.)
    fn normalize_ascii(&mut self, b: &[u8], max_words: usize) -> bool {
        let n = b.len();
        let mut has_dcd = false;
        let mut delete: u32 = 0;
        let mut look = |i: usize| {
            let c = b[i];
            if CLASS[c as usize] != PUNCT_CLASS {
                return;
            }
            let prev = if i > 0 { b[i - 1] } else { 0 };
            let next = if i + 1 < n { b[i + 1] } else { 0 };
            if c == b',' && prev.is_ascii_digit() && next.is_ascii_digit() {
                has_dcd = true;
            }
            if prev == b' ' || next == b' ' {
                delete |= 1 << (PUNCT_IDX[c as usize] - 1);
            }
        };
        let mut i = 0;
        while i + 8 <= n {
            let x = load8(b, i);
            // Eight letters or spaces hold no punctuation.
            if ascii_letters(x) | bytes_equal(x, b' ') != HIGH {
                (i..i + 8).for_each(&mut look);
            }
            i += 8;
        }
        (i..n).for_each(&mut look);
        if has_dcd {
            delete = u32::MAX;
        }
        let mut act = ACTION;
        for (k, &p) in PUNCT.iter().enumerate() {
            act[p as usize] = if delete & (1 << k) != 0 { SKIP } else { SPLIT };
        }

        let mut out = std::mem::take(&mut self.buf).into_bytes();
        out.clear();
        // Eight bytes of slack: the letter fast path stores whole words of eight bytes.
        out.resize(n + 8, 0);
        self.toks.clear();
        let (mut w, mut start, mut removed, mut i) = (0usize, 0usize, 0usize, 0usize);
        let mut complete = true;
        while i < n {
            if i + 8 <= n {
                // A run of letters, lower-cased eight at a time (`w <= i`, so the store fits).
                let x = load8(b, i);
                let letters = ascii_letters(x);
                let k = (!letters & HIGH).trailing_zeros() as usize / 8;
                if k > 0 {
                    out[w..w + 8].copy_from_slice(&(x | (letters >> 2)).to_le_bytes());
                    w += k;
                    i += k;
                    continue;
                }
            }
            let c = b[i];
            i += 1;
            match act[c as usize] {
                COPY => {
                    out[w] = c.to_ascii_lowercase();
                    w += 1;
                }
                SKIP => {}
                SPLIT => {
                    w = Self::push_word(&mut self.toks, &out, start, w);
                    start = w;
                    if self.toks.len() >= max_words {
                        complete = i >= n;
                        break;
                    }
                }
                _ => {
                    // A period: deleted unless a digit follows once deleted punctuation is gone
                    // (only the first PERIOD_COUNT deletions happen).
                    let keep = removed >= PERIOD_COUNT || {
                        let mut j = i;
                        while j < n && act[b[j] as usize] == SKIP {
                            j += 1;
                        }
                        j < n && b[j].is_ascii_digit()
                    };
                    if keep {
                        out[w] = b'.';
                        w += 1;
                    } else {
                        removed += 1;
                    }
                }
            }
        }
        if complete {
            w = Self::push_word(&mut self.toks, &out, start, w);
        }
        out.truncate(w);
        // Only ASCII bytes were written.
        self.buf = String::from_utf8(out).unwrap_or_default();
        complete
    }

    /// The general path (non-ASCII input).
    fn normalize_general(&mut self, orig: &str) {
        let b = orig.as_bytes();
        // 1. Punctuation decisions, all tested on the original text.
        let has_dcd = memchr::memchr_iter(b',', b).any(|i| {
            orig[..i].chars().next_back().is_some_and(is_decimal)
                && orig[i + 1..].chars().next().is_some_and(is_decimal)
        });
        let mut any_punct = false;
        let mut delete: u32 = if has_dcd { u32::MAX } else { 0 };
        for (i, &c) in b.iter().enumerate() {
            if c < 128 && PUNCT_IDX[c as usize] != 0 {
                any_punct = true;
                if !has_dcd
                    && ((i + 1 < b.len() && b[i + 1] == b' ') || (i > 0 && b[i - 1] == b' '))
                {
                    delete |= 1 << (PUNCT_IDX[c as usize] - 1);
                }
            }
        }
        // 2. Apply them (ASCII for ASCII, so UTF-8 stays valid).
        let t: &[u8] = if any_punct {
            self.scratch.clear();
            for &c in b {
                let p = if c < 128 { PUNCT_IDX[c as usize] } else { 0 };
                if p == 0 {
                    self.scratch.push(c);
                } else if delete & (1 << (p - 1)) == 0 {
                    self.scratch.push(b' ');
                }
            }
            &self.scratch
        } else {
            b
        };
        // 3. Period rule: drop `.` not followed by a decimal digit, at most 32 times. Deletions do
        //    not change what follows a later period (the regex scans the unmodified text).
        // Only ASCII bytes were removed or replaced, so `t` is still valid UTF-8.
        let ts = std::str::from_utf8(t).unwrap_or("");
        let mut out = std::mem::take(&mut self.buf).into_bytes();
        out.clear();
        let mut removed = 0;
        let mut ascii = true;
        for (i, &c) in t.iter().enumerate() {
            if c == b'.' && removed < PERIOD_COUNT {
                // `i + 1` is a char boundary: `.` is a one-byte character.
                let next_is_digit = ts[i + 1..].chars().next().is_some_and(is_decimal);
                if !next_is_digit {
                    removed += 1;
                    continue;
                }
            }
            ascii &= c.is_ascii();
            out.push(c);
        }
        // 4. Python `lower()` (full Unicode mapping, incl. final sigma).
        self.buf = if ascii {
            out.make_ascii_lowercase();
            // Only ASCII bytes were written, so this cannot fail.
            String::from_utf8(out).unwrap_or_default()
        } else {
            match String::from_utf8(out) {
                Ok(s) => s.to_lowercase(),
                // Cannot happen: only whole ASCII bytes were removed or replaced.
                Err(e) => String::from_utf8_lossy(e.as_bytes()).to_lowercase(),
            }
        };
        // 5. Words: number words, articles, contractions.
        self.toks.clear();
        let base = self.buf.as_ptr() as usize;
        for w in py_split(&self.buf) {
            let tok = match classify(w.as_bytes()) {
                WordOut::Drop => continue,
                WordOut::Fixed(f) => Tok {
                    start: 0,
                    end: 0,
                    fixed: Some(f),
                    hash: hash_bytes(f.as_bytes()),
                },
                WordOut::Keep(hash) => {
                    let a = w.as_ptr() as usize - base;
                    Tok {
                        start: a as u32,
                        end: (a + w.len()) as u32,
                        fixed: None,
                        hash,
                    }
                }
            };
            self.toks.push(tok);
        }
    }
}

/// `normalize_word(s)`.
pub fn normalize_word(s: &str) -> String {
    let mut n = Normalized::new();
    n.normalize(s);
    n.joined()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sizes_match_the_reference() {
        assert_eq!(CONTRACTIONS.len(), 120);
        assert!(
            CONTRACTIONS
                .iter()
                .all(|(k, _)| (2..=14).contains(&k.len()))
        );
        assert!(CONTRACTIONS.windows(2).all(|w| w[0].0 < w[1].0));
        for (k, v) in CONTRACTIONS {
            if k.chars().any(|c| c.is_ascii_uppercase()) {
                // Unreachable after lower-casing.
                assert_eq!(normalize_word(k), k.to_lowercase());
            } else {
                assert_eq!(contraction(k), Some(v));
            }
        }
    }

    #[test]
    fn punctuation_spacing_example_from_spec() {
        assert_eq!(normalize_word("a - b (c) x/y"), "b c x y");
        assert_eq!(normalize_word("a-b"), "b");
        assert_eq!(normalize_word("x-ray"), "x ray");
    }

    #[test]
    fn words_tables() {
        assert_eq!(normalize_word("The Three dont"), "3 don't");
        assert_eq!(
            normalize_word("somebody'd Im"),
            "somebodyd i'm".replace("i'm", "im")
        );
        assert_eq!(normalize_word("An apple"), "apple");
    }

    #[test]
    fn periods_before_digits_are_kept() {
        assert_eq!(normalize_word("pi is 3.14."), "pi is 3.14");
        assert_eq!(normalize_word("end. 5. .5"), "end 5 .5");
        assert_eq!(normalize_word("x.\u{FF15}"), "x.\u{FF15}");
    }

    #[test]
    fn limited_normalisation_stops_early_and_agrees_otherwise() {
        let mut n = Normalized::new();
        assert!(!n.normalize_limited("w1 w2 w3 w4 w5", 2));
        assert_eq!(n.len(), 2);
        assert!(n.normalize_limited("w1 w2 the w3", 4));
        assert_eq!(n.joined(), "w1 w2 w3");
    }

    #[test]
    fn unicode_lowercase() {
        assert_eq!(normalize_word("ΟΔΟΣ"), "οδος");
        assert_eq!(normalize_word("İ"), "i\u{307}");
    }
}

/// The fused ASCII pass against the general pass (a more literal transcription of the reference's
/// steps), on text dense in the characters the quirks are about.
#[cfg(test)]
mod ascii_path {
    use super::*;
    use proptest::prelude::*;

    fn ascii_text() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "a",
            "the",
            "An",
            "two",
            "TEN",
            "dont",
            "x",
            "Ab",
            "9",
            "1,2",
            ",",
            ".",
            ". ",
            " ",
            "  ",
            "\t",
            "\n",
            "\x1c",
            "-",
            "(",
            ")",
            "/",
            ";",
            "[",
            "]",
            "\"",
            "=",
            "+",
            "\\",
            "_",
            ">",
            "<",
            "@",
            "`",
            "?",
            "!",
            "{",
            "}",
            "'",
            "*",
            "%",
            ":",
            "3.5",
            "abcdefgh",
            "abcdefghij",
            "ABCDEFGHIJKLMNOPQ",
            "youll",
            "y'all'dve",
            "Z",
            "z",
            "`a",
            "@Z[",
        ]);
        prop::collection::vec(atoms, 0..48).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn ascii_fast_path_equals_general_path(s in ascii_text(), limit in 1usize..20) {
            let (mut fast, mut general) = (Normalized::new(), Normalized::new());
            prop_assert!(fast.normalize_ascii(s.as_bytes(), usize::MAX));
            general.normalize_general(&s);
            prop_assert_eq!(fast.joined(), general.joined());
            let fast_hashes: Vec<u64> = fast.hashed_words().map(|(h, _)| h).collect();
            let general_hashes: Vec<u64> = general.hashed_words().map(|(h, _)| h).collect();
            prop_assert_eq!(fast_hashes, general_hashes);
            // A limited pass holds a prefix of the words.
            let complete = fast.normalize_ascii(s.as_bytes(), limit);
            let words: Vec<&str> = general.words().collect();
            let got: Vec<&str> = fast.words().collect();
            prop_assert!(got.len() <= words.len() && words[..got.len()] == got[..]);
            prop_assert!(complete == (got.len() == words.len()) || got.len() >= limit);
        }
    }
}
