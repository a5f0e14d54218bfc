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

/// Open-addressing index over [`CONTRACTIONS`] (slot -> entry index + 1).
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

/// `contractions.get(w)`.
#[inline]
pub fn contraction(w: &str) -> Option<&'static str> {
    // Keys are 3..=13 bytes long; most words are filtered out here without hashing.
    if !(3..=13).contains(&w.len()) {
        return None;
    }
    let slots = &*CONTRACTION_SLOTS;
    let mut s = hash_bytes(w.as_bytes()) as usize & 511;
    loop {
        let e = slots[s];
        if e == 0 {
            return None;
        }
        let (k, v) = CONTRACTIONS[e as usize - 1];
        if k == w {
            return Some(v);
        }
        s = (s + 1) & 511;
    }
}

/// `manual_map.get(w)`: number words to digits.
#[inline]
pub fn manual_map(w: &str) -> Option<&'static str> {
    Some(match w {
        "none" | "zero" => "0",
        "one" => "1",
        "two" => "2",
        "three" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        _ => return None,
    })
}

#[inline]
fn is_article(w: &str) -> bool {
    matches!(w, "a" | "an" | "the")
}

/// One output word: a span of the lower-cased buffer or a replacement from a table.
#[derive(Debug, Clone, Copy)]
enum Tok {
    Span(u32, u32),
    Static(&'static str),
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
        self.toks.iter().map(|t| match *t {
            Tok::Span(a, b) => &self.buf[a as usize..b as usize],
            Tok::Static(s) => s,
        })
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
            if let Some(m) = manual_map(w) {
                self.toks.push(Tok::Static(m));
                continue;
            }
            if is_article(w) {
                continue;
            }
            if let Some(c) = contraction(w) {
                self.toks.push(Tok::Static(c));
                continue;
            }
            let a = w.as_ptr() as usize - base;
            self.toks.push(Tok::Span(a as u32, (a + w.len()) as u32));
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
    fn unicode_lowercase() {
        assert_eq!(normalize_word("ΟΔΟΣ"), "οδος");
        assert_eq!(normalize_word("İ"), "i\u{307}");
    }
}
