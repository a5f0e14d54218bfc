//! A parser for Python literals (`ast.literal_eval` subset).
//!
//! Several sources store structured fields as the `repr()` of a Python object instead of JSON:
//! MedCalc-Bench's `Relevant Entities` column (`{'age': [87, 'years'], 'sex': 'Male'}`), the
//! gestational-age answers (`('17 weeks', '6 days')`). This module turns such text into an
//! [`OValue`] so later stages can use it as JSON. Tuples become arrays; dict keys that are not
//! strings are written as their Python `str()`.

use crate::ovalue::OValue;
use serde_json::Number;

/// Why a Python literal could not be parsed; `offset` is a byte offset into the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid python literal at byte {offset}: {message}")]
pub struct PyLiteralError {
    pub offset: usize,
    pub message: String,
}

/// Deepest nesting of brackets accepted. Python's tokenizer refuses more than 200 nested
/// parentheses ("too many nested parentheses"), so no literal `ast.literal_eval` accepts is lost,
/// and the recursive parser never gets near the end of a thread's stack.
pub const MAX_DEPTH: usize = 200;

/// Parses a complete Python literal (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<OValue, PyLiteralError> {
    let mut p = Parser {
        s: text.as_bytes(),
        src: text,
        i: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text after the literal"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    /// Brackets currently open.
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> PyLiteralError {
        PyLiteralError {
            offset: self.i,
            message: m.to_string(),
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<OValue, PyLiteralError> {
        if !matches!(self.peek(), Some(b'{' | b'[' | b'(')) {
            return self.scalar();
        }
        if self.depth == MAX_DEPTH {
            return Err(self.err(&format!(
                "nested too deeply (more than {MAX_DEPTH} levels of brackets)"
            )));
        }
        self.depth += 1;
        let v = self.container();
        self.depth -= 1;
        v
    }

    fn container(&mut self) -> Result<OValue, PyLiteralError> {
        match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'[') => {
                self.i += 1;
                let items = self.items(b']')?.0;
                Ok(OValue::Array(items))
            }
            Some(b'(') => {
                self.i += 1;
                let (items, trailing_comma) = self.items(b')')?;
                // `(x)` is just a parenthesised value; `(x,)` and `()` are tuples.
                if items.len() == 1 && !trailing_comma {
                    Ok(items.into_iter().next().expect("one item"))
                } else {
                    Ok(OValue::Array(items))
                }
            }
            _ => self.scalar(),
        }
    }

    fn scalar(&mut self) -> Result<OValue, PyLiteralError> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'\'' | b'"') => Ok(OValue::String(self.string()?)),
            Some(c)
                if (c == b'u' || c == b'r' || c == b'U' || c == b'R')
                    && matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                let raw = c == b'r' || c == b'R';
                self.i += 1;
                if raw {
                    Ok(OValue::String(self.raw_string()?))
                } else {
                    Ok(OValue::String(self.string()?))
                }
            }
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => self.word(),
        }
    }

    /// Comma-separated values up to `close`; returns whether a trailing comma was present.
    fn items(&mut self, close: u8) -> Result<(Vec<OValue>, bool), PyLiteralError> {
        let mut out = Vec::new();
        let mut trailing = false;
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok((out, trailing));
            }
            out.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    trailing = true;
                }
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok((out, false));
                }
                _ => return Err(self.err("expected ',' or a closing bracket")),
            }
        }
    }

    fn dict(&mut self) -> Result<OValue, PyLiteralError> {
        self.i += 1;
        let mut out: Vec<(String, OValue)> = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(OValue::Object(out));
            }
            let key = match self.value()? {
                OValue::String(s) => s,
                OValue::Null => "None".to_string(),
                other => other
                    .scalar_text()
                    .ok_or_else(|| self.err("unhashable dict key"))?,
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':' after a dict key"));
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            // Python keeps the last value of a repeated key, at the first key's position.
            if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = v;
            } else {
                out.push((key, v));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(OValue::Object(out));
                }
                _ => return Err(self.err("expected ',' or '}' in a dict")),
            }
        }
    }

    fn quote(&mut self) -> Result<(u8, bool), PyLiteralError> {
        let q = self.peek().ok_or_else(|| self.err("expected a string"))?;
        let triple = self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..]);
        self.i += if triple { 3 } else { 1 };
        Ok((q, triple))
    }

    fn at_close(&self, q: u8, triple: bool) -> bool {
        if triple {
            self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..])
        } else {
            self.peek() == Some(q)
        }
    }

    fn raw_string(&mut self) -> Result<String, PyLiteralError> {
        let (q, triple) = self.quote()?;
        let start = self.i;
        while self.i < self.s.len() && !self.at_close(q, triple) {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        if self.i >= self.s.len() {
            // A trailing backslash steps past the end; the error points at the end.
            self.i = self.s.len();
            return Err(self.err("unterminated string"));
        }
        let out = self.src[start..self.i].to_string();
        self.i += if triple { 3 } else { 1 };
        Ok(out)
    }

    fn string(&mut self) -> Result<String, PyLiteralError> {
        let (q, triple) = self.quote()?;
        let mut out = String::new();
        loop {
            if self.i >= self.s.len() {
                return Err(self.err("unterminated string"));
            }
            if self.at_close(q, triple) {
                self.i += if triple { 3 } else { 1 };
                return Ok(out);
            }
            let c = self.src[self.i..].chars().next().expect("in bounds");
            if c != '\\' {
                if !triple && c == '\n' {
                    return Err(self.err("newline inside a single-quoted string"));
                }
                out.push(c);
                self.i += c.len_utf8();
                continue;
            }
            self.i += 1;
            let e = self.src[self.i..]
                .chars()
                .next()
                .ok_or_else(|| self.err("unterminated escape"))?;
            self.i += e.len_utf8();
            match e {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\u{b}'),
                'x' => out.push(self.hex(2)?),
                'u' => out.push(self.hex(4)?),
                'U' => out.push(self.hex(8)?),
                '0'..='7' => {
                    let mut n = e.to_digit(8).expect("octal digit");
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                n = n * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(n).ok_or_else(|| self.err("bad octal escape"))?);
                }
                // Python keeps unknown escapes verbatim, backslash included.
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, PyLiteralError> {
        let digits = self
            .src
            .get(self.i..self.i + n)
            .ok_or_else(|| self.err("truncated hex escape"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.err("bad hex escape"))?;
        self.i += n;
        char::from_u32(v).ok_or_else(|| self.err("hex escape is not a character"))
    }

    fn number(&mut self) -> Result<OValue, PyLiteralError> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while let Some(c) = self.peek() {
            let exponent_sign =
                (c == b'-' || c == b'+') && matches!(self.s.get(self.i - 1), Some(b'e' | b'E'));
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                self.i += 1;
            } else {
                break;
            }
        }
        let text: String = self.src[start..self.i]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(OValue::Number(i.into()));
        }
        let lower = text.to_ascii_lowercase();
        // Python has no `inf`/`nan` literals, though Rust's float parser accepts them.
        if !lower.contains("inf")
            && !lower.contains("nan")
            && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
        {
            return Ok(OValue::Number(n));
        }
        self.i = start;
        Err(self.err("invalid number"))
    }

    fn word(&mut self) -> Result<OValue, PyLiteralError> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        match &self.src[start..self.i] {
            "True" => Ok(OValue::Bool(true)),
            "False" => Ok(OValue::Bool(false)),
            "None" => Ok(OValue::Null),
            _ => {
                self.i = start;
                Err(self.err(
                    "expected a literal (dict, list, tuple, string, number, True, False, None)",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        parse(s).unwrap().to_json().to_string()
    }

    #[test]
    fn medcalc_relevant_entities() {
        let v = parse(
            "{'sex': 'Male', 'age': [87, 'years'], 'weight': [48.0, 'kg'], 'x': None, 'ok': True}",
        )
        .unwrap();
        let keys: Vec<_> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, ["sex", "age", "weight", "x", "ok"]);
        assert_eq!(
            v.to_json(),
            serde_json::json!({"sex":"Male","age":[87,"years"],"weight":[48.0,"kg"],"x":null,"ok":true})
        );
    }

    #[test]
    fn tuples_strings_and_escapes() {
        assert_eq!(json("('17 weeks', '6 days')"), r#"["17 weeks","6 days"]"#);
        assert_eq!(json("(1,)"), "[1]");
        assert_eq!(json("()"), "[]");
        assert_eq!(json("(1)"), "1");
        assert_eq!(json(r#""it's""#), r#""it's""#);
        assert_eq!(json(r"'a\'b\n\x41\u00e9\\'"), r#""a'b\nAé\\""#);
        assert_eq!(json(r"'\d'"), r#""\\d""#);
        assert_eq!(json("-1.5e-3"), "-0.0015");
        assert_eq!(json("{1: 'a', 2.5: [False]}"), r#"{"1":"a","2.5":[false]}"#);
        assert_eq!(json("'''tri'ple'''"), r#""tri'ple""#);
    }

    #[test]
    fn errors_carry_offsets() {
        let e = parse("{'a': 1,, }").unwrap_err();
        assert_eq!(e.offset, 8);
        assert!(parse("{'a' 1}").is_err());
        assert!(parse("'open").is_err());
        assert!(parse("[1] x").is_err());
        assert!(parse("nan").is_err());
        // Found by the fuzz target: a raw string ending in a backslash gave an offset past the end.
        assert_eq!(parse(r"r'\").unwrap_err().offset, 3);
    }

    #[test]
    fn deeply_nested_literal_is_an_error_not_a_stack_overflow() {
        for open in ["[", "(", "{'k': "] {
            let text = open.repeat(100_000);
            let e = parse(&text).unwrap_err();
            assert!(e.message.contains("nested too deeply"), "{open}: {e}");
        }
        // Python's own parser stops at 200 levels; up to that depth still parses.
        let ok = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}1{}", "[".repeat(201), "]".repeat(201));
        assert!(parse(&deep).is_err());
    }
}
