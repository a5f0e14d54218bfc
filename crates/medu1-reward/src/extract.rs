//! Finding the model's answer in the decoded sequence (`extract_solution`, §2.1 and §2.12).
//!
//! The scored string is prompt + response, so the reference first cuts at a response header and
//! then takes the *last* lazy `<answer>(.*?)</answer>` match. Both steps are hand scans with
//! `memchr::memmem` (no regex): they run on every sample in the training loop.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

use crate::py_strip;

/// The response headers, in the order the reference tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Header {
    /// `Assistant:` (plain base-model prompts). Tried first, anywhere in prompt + response.
    #[serde(rename = "Assistant:")]
    Assistant,
    /// `<|im_start|>assistant` (Qwen chat template).
    #[serde(rename = "<|im_start|>assistant")]
    Qwen,
    /// `<|start_header_id|>assistant<|end_header_id|>` (Llama 3 chat template).
    #[serde(rename = "<|start_header_id|>assistant<|end_header_id|>")]
    Llama3,
}

impl Header {
    pub const ALL: [Header; 3] = [Header::Assistant, Header::Qwen, Header::Llama3];

    pub fn as_str(self) -> &'static str {
        match self {
            Header::Assistant => "Assistant:",
            Header::Qwen => "<|im_start|>assistant",
            Header::Llama3 => "<|start_header_id|>assistant<|end_header_id|>",
        }
    }

    fn finder(self) -> &'static Finder<'static> {
        static F: LazyLock<[Finder<'static>; 3]> =
            LazyLock::new(|| Header::ALL.map(|h| Finder::new(h.as_str().as_bytes()).into_owned()));
        &F[self as usize]
    }
}

static OPEN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"<answer>"));
static CLOSE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"</answer>"));

static SSISTANT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"ssistant"));

/// `solution_str.split(h, 1)[1]` for the first header `h` that occurs, or the whole string.
///
/// All three headers contain `ssistant`, so one scan for it finds every candidate: `Assistant:`
/// anywhere wins at once; otherwise the first Qwen header, otherwise the first Llama 3 header.
#[inline]
pub fn split_header(solution_str: &str) -> (Option<Header>, &str) {
    let bytes = solution_str.as_bytes();
    let mut qwen = None;
    let mut llama = None;
    let mut at = 0;
    while let Some(p) = SSISTANT.find(&bytes[at..]) {
        let p = at + p;
        at = p + 1;
        // `p` is where "ssistant" starts; the header's `A`/`a` is at p - 1.
        let Some(start) = p.checked_sub(1) else {
            continue;
        };
        let rest = &bytes[start..];
        if rest.starts_with(b"Assistant:") {
            return (
                Some(Header::Assistant),
                &solution_str[start + "Assistant:".len()..],
            );
        }
        if qwen.is_none()
            && let Some(s) = start.checked_sub("<|im_start|>".len())
            && bytes[s..].starts_with(Header::Qwen.as_str().as_bytes())
        {
            qwen = Some(s);
        }
        if llama.is_none()
            && let Some(s) = start.checked_sub("<|start_header_id|>".len())
            && bytes[s..].starts_with(Header::Llama3.as_str().as_bytes())
        {
            llama = Some(s);
        }
    }
    if let Some(s) = qwen {
        return (
            Some(Header::Qwen),
            &solution_str[s + Header::Qwen.as_str().len()..],
        );
    }
    if let Some(s) = llama {
        return (
            Some(Header::Llama3),
            &solution_str[s + Header::Llama3.as_str().len()..],
        );
    }
    (None, solution_str)
}

/// The reference's header split, one `find` per header in order (kept to cross-check the
/// single-scan version in tests).
pub fn split_header_reference(solution_str: &str) -> (Option<Header>, &str) {
    let bytes = solution_str.as_bytes();
    for h in Header::ALL {
        if let Some(pos) = h.finder().find(bytes) {
            return (Some(h), &solution_str[pos + h.as_str().len()..]);
        }
    }
    (None, solution_str)
}

/// The group of the last non-overlapping lazy match of `open(.*?)</answer>` (DOTALL), unstripped.
#[inline]
fn last_lazy_match<'a>(s: &'a str, open: &Finder<'_>, open_len: usize) -> Option<&'a str> {
    let bytes = s.as_bytes();
    let mut at = 0;
    let mut last = None;
    while let Some(o) = open.find(&bytes[at..]) {
        let inner = at + o + open_len;
        let Some(c) = CLOSE.find(&bytes[inner..]) else {
            // No closing tag after this opening; no later opening can have one either.
            break;
        };
        last = Some(&s[inner..inner + c]);
        at = inner + c + "</answer>".len();
    }
    last
}

/// The stripped content of the last `<answer>(.*?)</answer>` match of `processed`.
#[inline]
pub fn find_answer(processed: &str) -> Option<&str> {
    crate::format::scan_tags(processed)
        .answer
        .map(|(a, b)| py_strip(&processed[a..b]))
}

/// [`find_answer`] by repeated substring search (the straightforward reading of the regex; kept
/// to cross-check the tag-scan version in tests).
pub fn find_answer_reference(processed: &str) -> Option<&str> {
    last_lazy_match(processed, &OPEN, "<answer>".len()).map(py_strip)
}

/// What `extract_solution` returns, plus which header it split on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted<'a> {
    pub header: Option<Header>,
    /// The text after the header, or the whole input when no header was found.
    pub processed: &'a str,
    /// `None` when no header was found or nothing matched; may be `Some("")`.
    pub answer: Option<&'a str>,
}

/// The training extractor (MS `extract_solution`).
#[inline]
pub fn extract_solution(solution_str: &str) -> Extracted<'_> {
    let (header, processed) = split_header(solution_str);
    let answer = if header.is_some() {
        find_answer(processed)
    } else {
        None
    };
    Extracted {
        header,
        processed,
        answer,
    }
}

/// [`extract_solution`] and the `check_think` format verdict of its processed string, from one
/// header scan and one scan of the processed string's `<` bytes.
#[inline]
pub fn analyse(solution_str: &str) -> (Extracted<'_>, crate::format::FormatVerdict) {
    let (header, processed) = split_header(solution_str);
    let scan = crate::format::scan_tags(processed);
    let answer = if header.is_some() {
        scan.answer.map(|(a, b)| py_strip(&processed[a..b]))
    } else {
        None
    };
    (
        Extracted {
            header,
            processed,
            answer,
        },
        scan.verdict,
    )
}

/// The offline-evaluation extractor (VI `extract_solution`): as [`extract_solution`], but with no
/// `<answer>…</answer>` match it falls back to the last `</answer>(.*?)</answer>` match.
pub fn extract_solution_eval(solution_str: &str) -> Extracted<'_> {
    let (header, processed) = split_header(solution_str);
    let answer = if header.is_some() {
        find_answer(processed)
            .or_else(|| last_lazy_match(processed, &CLOSE, "</answer>".len()).map(py_strip))
    } else {
        None
    };
    Extracted {
        header,
        processed,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_order_and_first_occurrence() {
        let s = "<|im_start|>assistant\nA<|im_start|>assistant\nB Assistant: C";
        let (h, p) = split_header(s);
        assert_eq!(h, Some(Header::Assistant));
        assert_eq!(p, " C");
        let (h, p) = split_header("x<|im_start|>assistant\n1<|im_start|>assistant\n2");
        assert_eq!(h, Some(Header::Qwen));
        assert_eq!(p, "\n1<|im_start|>assistant\n2");
        let (h, _) = split_header("<|start_header_id|>assistant<|end_header_id|>\n\nhi");
        assert_eq!(h, Some(Header::Llama3));
        assert_eq!(split_header("no header"), (None, "no header"));
    }

    #[test]
    fn last_lazy_match_and_nesting() {
        let e = extract_solution("Assistant: <answer> a </answer> <answer>b</answer>");
        assert_eq!(e.answer, Some("b"));
        let e = extract_solution("Assistant:<answer>X<answer>Y</answer>");
        assert_eq!(e.answer, Some("X<answer>Y"));
        let e = extract_solution("Assistant:<answer>a</answer><answer>dangling");
        assert_eq!(e.answer, Some("a"));
        let e = extract_solution("Assistant:<ANSWER>a</ANSWER><answer >b</answer>");
        assert_eq!(e.answer, None);
        // Python strip removes U+001C..U+001F, but not U+200B.
        let e = extract_solution("Assistant:<answer>\u{1c}\u{2028}B\u{200b}</answer>");
        assert_eq!(e.answer, Some("B\u{200b}"));
    }

    #[test]
    fn tag_scan_matches_substring_search() {
        let cases = [
            "<answer>a</answer><answer>b</answer>",
            "<answer>X<answer>Y</answer>",
            "<answer>a</answer><answer>dangling",
            "</answer><answer></answer></answer><answer>q</answer>x",
            "<answer></answer>",
            "<<answer>>a<</answer>>",
            "none",
        ];
        for c in cases {
            assert_eq!(find_answer(c), find_answer_reference(c), "{c:?}");
        }
    }

    #[test]
    fn single_scan_matches_ordered_finds() {
        let cases = [
            "x<|im_start|>assistant\ny Assistant: z",
            "<|start_header_id|>assistant<|end_header_id|> <|im_start|>assistant",
            "assistant Assistant Assistant:",
            "ssistant: <|im_start|>assistant",
            "<|im_start|>assistant<|im_start|>assistant",
            "nothing",
            "",
        ];
        for c in cases {
            assert_eq!(split_header(c), split_header_reference(c), "{c:?}");
        }
    }

    #[test]
    fn no_header_gives_no_answer() {
        let e = extract_solution("<answer>A</answer>");
        assert_eq!(e.header, None);
        assert_eq!(e.answer, None);
        assert_eq!(e.processed, "<answer>A</answer>");
    }

    #[test]
    fn eval_fallback_uses_closing_tags() {
        let s = "Assistant: </answer> C </answer>";
        assert_eq!(extract_solution(s).answer, None);
        assert_eq!(extract_solution_eval(s).answer, Some("C"));
        let s = "Assistant: <answer>A</answer> </answer>B</answer>";
        assert_eq!(extract_solution_eval(s).answer, Some("A"));
    }
}
