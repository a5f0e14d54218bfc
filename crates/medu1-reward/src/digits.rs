//! Unicode decimal digits (general category Nd) and their values, as Python sees them.
//!
//! Python's `float()` accepts any Nd digit and `re`'s `\d` matches any Nd digit in str patterns, so
//! the normaliser's `(\d)(,)(\d)` test and period rule, and the calculation grader, need this table.
//! Every Nd character belongs to a run of ten consecutive code points with values 0..=9, so the
//! table only lists the code point of each run's zero.
//!
//! GENERATED with CPython 3.11.7 (`unicodedata.unidata_version` 14.0.0, the reference's runtime) by:
//! ```text
//! runs = [cp for cp in range(sys.maxunicode + 1)
//!         if unicodedata.category(chr(cp)) == 'Nd' and unicodedata.decimal(chr(cp)) == 0]
//! assert all(unicodedata.decimal(chr(s + i)) == i for s in runs for i in range(10))
//! ```
//! Do not edit by hand; regenerate with the snippet above.

/// Code point of the digit zero of each Nd run, ascending (66 runs, 660 digits).
const ND_ZEROS: [u32; 66] = [
    0x00030, 0x00660, 0x006F0, 0x007C0, 0x00966, 0x009E6, 0x00A66, 0x00AE6, 0x00B66, 0x00BE6,
    0x00C66, 0x00CE6, 0x00D66, 0x00DE6, 0x00E50, 0x00ED0, 0x00F20, 0x01040, 0x01090, 0x017E0,
    0x01810, 0x01946, 0x019D0, 0x01A80, 0x01A90, 0x01B50, 0x01BB0, 0x01C40, 0x01C50, 0x0A620,
    0x0A8D0, 0x0A900, 0x0A9D0, 0x0A9F0, 0x0AA50, 0x0ABF0, 0x0FF10, 0x104A0, 0x10D30, 0x11066,
    0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0,
    0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2,
    0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The decimal value of `c` if it is a Unicode decimal digit (Python `str.isdecimal`, regex `\d`).
#[inline]
pub fn decimal_value(c: char) -> Option<u32> {
    let cp = c as u32;
    if cp < 0x80 {
        return c.is_ascii_digit().then(|| cp - 0x30);
    }
    // The last run start <= cp; cp is a digit iff it lies within that run's ten code points.
    let idx = ND_ZEROS.partition_point(|&z| z <= cp);
    if idx == 0 {
        return None;
    }
    let off = cp - ND_ZEROS[idx - 1];
    (off < 10).then_some(off)
}

/// `true` if `c` is a Unicode decimal digit.
#[inline]
pub fn is_decimal(c: char) -> bool {
    decimal_value(c).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_fullwidth_and_arabic_indic_digits() {
        assert_eq!(decimal_value('7'), Some(7));
        assert_eq!(decimal_value('\u{FF14}'), Some(4)); // fullwidth 4
        assert_eq!(decimal_value('\u{0664}'), Some(4)); // arabic-indic 4
        assert_eq!(decimal_value('\u{1D7CE}'), Some(0)); // mathematical bold 0
        assert_eq!(decimal_value('a'), None);
        assert_eq!(decimal_value('\u{00B2}'), None); // superscript two is No, not Nd
        assert_eq!(decimal_value('\u{2167}'), None); // roman numeral eight is Nl
    }

    #[test]
    fn table_is_sorted_and_runs_do_not_overlap() {
        assert!(ND_ZEROS.windows(2).all(|w| w[1] >= w[0] + 10));
        let total: usize = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_decimal(c))
            .count();
        assert_eq!(total, ND_ZEROS.len() * 10);
    }
}
