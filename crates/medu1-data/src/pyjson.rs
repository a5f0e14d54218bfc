//! JSON text as Python's `json.dumps(obj, ensure_ascii=False)` writes it.
//!
//! verl JSONL files and the golden vectors were written by Python: `", "` and `": "` separators,
//! non-ASCII kept as is. Writing the same bytes lets medu1's output be diffed against the
//! reference's and lets the golden test compare records byte for byte. U+0085, U+2028 and U+2029
//! are escaped as well (as the golden files do) so that the output splits safely on `\n`.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io::{self, Write};

/// The formatter: Python's default separators, escapes for the line-breaking code points.
#[derive(Debug, Clone, Copy, Default)]
pub struct PyFormatter;

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        frag: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in frag.char_indices() {
            if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
                w.write_all(&frag.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&frag.as_bytes()[start..])
    }
    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, e: CharEscape) -> io::Result<()> {
        // Python writes `\u00XX` with lowercase hex, like serde_json; delegate.
        serde_json::ser::CompactFormatter.write_char_escape(w, e)
    }
}

/// Serializes `value` as Python's `json.dumps(value, ensure_ascii=False)` would.
pub fn to_writer<W: Write, T: Serialize + ?Sized>(w: W, value: &T) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(w, PyFormatter);
    value.serialize(&mut ser)
}

/// Like [`to_writer`], into a `String`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    to_writer(&mut out, value).expect("serializing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_separators_and_escapes() {
        let v = serde_json::json!({"a": [1, "é\n\u{2028}"], "b": null});
        assert_eq!(
            super::to_string(&v),
            "{\"a\": [1, \"é\\n\\u2028\"], \"b\": null}"
        );
        assert_eq!(super::to_string("\u{1f}"), "\"\\u001f\"");
    }
}
