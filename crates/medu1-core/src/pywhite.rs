//! Python's notion of whitespace, which the reference relies on through `str.strip()` and
//! `str.split()`.
//!
//! Python's `str.isspace` is Unicode White_Space plus U+001C–U+001F (the information separators);
//! Rust's `char::is_whitespace` lacks those four, so a port that uses `trim()` disagrees on them.

/// `str.isspace()` for one character.
#[inline]
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()` with no argument.
#[inline]
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `str.split()` with no argument: runs of whitespace separate, no empty pieces.
#[inline]
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_separators_are_whitespace_like_python() {
        assert_eq!(py_strip("\u{1c}\u{1f} a \u{1d}"), "a");
        assert_eq!(py_split("a\u{1e}b  c").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn zero_width_space_and_bom_are_not_whitespace() {
        assert_eq!(py_strip("\u{200b}x\u{feff}"), "\u{200b}x\u{feff}");
    }
}
