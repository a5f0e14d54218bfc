//! Python's `float(str)`, which the calculation grader uses on answers, ground truths and limits.
//!
//! Rust's `str::parse::<f64>` has a different grammar: it rejects `"1_000"`, surrounding whitespace
//! and non-ASCII digits such as `"４２"`, all of which Python accepts. This module reproduces
//! CPython 3.11's pipeline: non-ASCII decimal digits become ASCII digits and non-ASCII whitespace
//! becomes a space (`_PyUnicode_TransformDecimalAndSpaceToASCII`), ASCII whitespace is stripped
//! (`Py_ISSPACE`, which does *not* include U+001C–U+001F), single underscores between digits are
//! dropped, and the rest must be `[sign] (inf | infinity | nan | decimal [exponent])`.

use crate::digits::decimal_value;

/// Why `float()` would raise `ValueError` on a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("could not convert string to float")]
pub struct PyFloatError;

/// Longest input the stack buffer handles; longer strings fall back to a heap buffer.
const STACK: usize = 64;

/// Python `float(s)` for a `str` argument.
pub fn py_float(s: &str) -> Result<f64, PyFloatError> {
    // Fast path for the common case: plain ASCII without underscores or surrounding whitespace.
    let b = s.as_bytes();
    if !b.is_empty()
        && b.len() <= STACK
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'))
    {
        return parse_ascii(b);
    }
    let mut stack = [0u8; STACK];
    let mut heap = Vec::new();
    let mut n = 0usize;
    let mut push = |byte: u8, n: &mut usize| {
        if *n < STACK {
            stack[*n] = byte;
        } else {
            if *n == STACK {
                heap.extend_from_slice(&stack);
            }
            heap.push(byte);
        }
        *n += 1;
    };
    for c in s.chars() {
        if c.is_ascii() {
            push(c as u8, &mut n);
        } else if let Some(d) = decimal_value(c) {
            push(b'0' + d as u8, &mut n);
        } else if crate::py_space(c) {
            push(b' ', &mut n);
        } else {
            return Err(PyFloatError);
        }
    }
    let buf: &[u8] = if n <= STACK { &stack[..n] } else { &heap };
    // Py_ISSPACE: space, \t, \n, \v, \f, \r only.
    let is_sp = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = buf.iter().position(|c| !is_sp(c)).unwrap_or(buf.len());
    let end = buf.iter().rposition(|c| !is_sp(c)).map_or(start, |p| p + 1);
    let body = &buf[start..end];
    if !body.contains(&b'_') {
        return parse_ascii(body);
    }
    // `_Py_string_to_number_with_underscores`: an underscore must sit between two ASCII digits.
    let mut clean = Vec::with_capacity(body.len());
    let mut prev = 0u8;
    for &c in body {
        if c == b'_' {
            if !prev.is_ascii_digit() {
                return Err(PyFloatError);
            }
        } else {
            if prev == b'_' && !c.is_ascii_digit() {
                return Err(PyFloatError);
            }
            clean.push(c);
        }
        prev = c;
    }
    if prev == b'_' {
        return Err(PyFloatError);
    }
    parse_ascii(&clean)
}

/// `PyOS_string_to_double` on an already cleaned ASCII string that must be consumed entirely.
fn parse_ascii(b: &[u8]) -> Result<f64, PyFloatError> {
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let special = if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        Some(f64::INFINITY)
    } else if rest.eq_ignore_ascii_case(b"nan") {
        Some(f64::NAN)
    } else {
        None
    };
    if let Some(v) = special {
        return Ok(if neg { -v } else { v });
    }
    // Validate `digits [. digits] [e [sign] digits]` with at least one mantissa digit ourselves, so
    // the accepted grammar never depends on Rust's parser; Rust then does the correctly rounded
    // conversion (overflow to ±inf and underflow to 0, as in Python).
    let mut i = 0;
    let mut mant = 0;
    while i < rest.len() && rest[i].is_ascii_digit() {
        i += 1;
        mant += 1;
    }
    if i < rest.len() && rest[i] == b'.' {
        i += 1;
        while i < rest.len() && rest[i].is_ascii_digit() {
            i += 1;
            mant += 1;
        }
    }
    if mant == 0 {
        return Err(PyFloatError);
    }
    if i < rest.len() && (rest[i] | 0x20) == b'e' {
        i += 1;
        if i < rest.len() && matches!(rest[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < rest.len() && rest[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return Err(PyFloatError);
        }
    }
    if i != rest.len() {
        return Err(PyFloatError);
    }
    // The bytes are ASCII by construction.
    let text = std::str::from_utf8(b).map_err(|_| PyFloatError)?;
    text.parse::<f64>().map_err(|_| PyFloatError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> f64 {
        py_float(s).unwrap_or_else(|_| panic!("{s:?} should parse"))
    }

    #[test]
    fn accepts_what_python_accepts() {
        assert_eq!(ok("42"), 42.0);
        assert_eq!(ok(" 42 "), 42.0);
        assert_eq!(ok("\u{3000}1\u{a0}"), 1.0);
        assert_eq!(ok("9_6.0"), 96.0);
        assert_eq!(ok("1_000"), 1000.0);
        assert_eq!(ok("1_0e1_0"), 1e11);
        assert_eq!(ok("1.e3"), 1000.0);
        assert_eq!(ok(".5e1"), 5.0);
        assert_eq!(ok("1."), 1.0);
        assert_eq!(ok("-iNfInItY"), f64::NEG_INFINITY);
        assert_eq!(ok("+inf"), f64::INFINITY);
        assert!(ok("-nan").is_nan());
        assert_eq!(ok("\u{FF14}\u{FF12}"), 42.0);
        assert_eq!(ok("\u{0664}\u{0662}"), 42.0);
        assert_eq!(ok("\u{FF11}e\u{FF13}"), 1000.0);
        assert_eq!(ok("1e400"), f64::INFINITY);
        assert_eq!(ok("1e-400"), 0.0);
        assert_eq!(ok("0.1"), 0.1);
    }

    #[test]
    fn rejects_what_python_rejects() {
        for s in [
            "",
            " ",
            "1,000",
            "0x1A",
            "1.5e",
            ".",
            "+-1",
            "1__000",
            "_1",
            "1_",
            "1_.5",
            ".e3",
            "\u{1c}1",
            "1\u{1f}",
            "1\0",
            "\u{0661}\u{066B}\u{0665}",
            "abc",
            "nan1",
            "in",
            "1e+",
            "--1",
            "1 2",
        ] {
            assert!(py_float(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn long_inputs_use_the_heap_buffer() {
        let s = format!(" {}1 ", "0".repeat(200));
        assert_eq!(ok(&s), 1.0);
        let s = format!("{}_1", "1".repeat(100));
        assert!(ok(&s) > 1e99);
    }
}
