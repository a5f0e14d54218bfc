//! The format rule `validate_response_structure` (§2.2): each of `<think>`, `</think>`, `<answer>`,
//! `</answer>` exactly once, in that order. Anything else around the tags is allowed.
//!
//! One `memchr` pass over the `<` bytes counts all four tags and records their first positions,
//! instead of four `count` and four `find` scans; the verdict also says which check failed, for
//! traces.

use serde::{Deserialize, Serialize};

/// The four tags of the format rule, in their required order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tag {
    #[serde(rename = "<think>")]
    Think,
    #[serde(rename = "</think>")]
    ThinkEnd,
    #[serde(rename = "<answer>")]
    Answer,
    #[serde(rename = "</answer>")]
    AnswerEnd,
}

impl Tag {
    pub const ALL: [Tag; 4] = [Tag::Think, Tag::ThinkEnd, Tag::Answer, Tag::AnswerEnd];

    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Think => "<think>",
            Tag::ThinkEnd => "</think>",
            Tag::Answer => "<answer>",
            Tag::AnswerEnd => "</answer>",
        }
    }
}

/// The format verdict and, when it fails, the first failing check in the reference's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum FormatVerdict {
    Valid,
    /// A tag occurs `count` times instead of once (the first such tag in `<think>`, `</think>`,
    /// `<answer>`, `</answer>` order).
    TagCount {
        tag: Tag,
        count: usize,
    },
    /// `first` occurs after `second` although it must come before it.
    Order {
        first: Tag,
        second: Tag,
    },
}

impl FormatVerdict {
    pub fn is_valid(self) -> bool {
        matches!(self, FormatVerdict::Valid)
    }
}

/// What one pass over the `<` bytes of a processed string finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagScan {
    pub verdict: FormatVerdict,
    /// Byte range of the group of the last lazy `<answer>(.*?)</answer>` match (unstripped).
    pub answer: Option<(usize, usize)>,
}

/// `validate_response_structure(processed_str)` with the reason for a failure.
#[inline]
pub fn check_format(processed: &str) -> FormatVerdict {
    scan_tags(processed).verdict
}

/// Counts the four tags, records their first positions and, on the way, replays the regex
/// `<answer>(.*?)</answer>` (non-overlapping, left to right): tags never overlap each other, so
/// walking their occurrences in order is the same as the regex scan.
#[inline]
pub(crate) fn scan_tags(processed: &str) -> TagScan {
    let b = processed.as_bytes();
    let mut count = [0usize; 4];
    let mut first = [usize::MAX; 4];
    let mut open: Option<usize> = None;
    let mut answer = None;
    // Each tag starts with `<` and contains no other `<`, so non-overlapping counts equal the
    // number of `<` positions where the tag text starts.
    for i in memchr::memchr_iter(b'<', b) {
        let rest = &b[i..];
        let t = if rest.starts_with(b"<think>") {
            0
        } else if rest.starts_with(b"</think>") {
            1
        } else if rest.starts_with(b"<answer>") {
            2
        } else if rest.starts_with(b"</answer>") {
            3
        } else {
            continue;
        };
        count[t] += 1;
        if first[t] == usize::MAX {
            first[t] = i;
        }
        match (t, open) {
            // An opening tag while looking for one starts a match.
            (2, None) => open = Some(i + "<answer>".len()),
            // The first closing tag after the opening one ends it (lazy `.*?`).
            (3, Some(o)) => {
                answer = Some((o, i));
                open = None;
            }
            _ => {}
        }
    }
    TagScan {
        verdict: verdict(&count, &first),
        answer,
    }
}

fn verdict(count: &[usize; 4], first: &[usize; 4]) -> FormatVerdict {
    for (t, &c) in count.iter().enumerate() {
        if c != 1 {
            return FormatVerdict::TagCount {
                tag: Tag::ALL[t],
                count: c,
            };
        }
    }
    for t in 0..3 {
        if first[t] > first[t + 1] {
            return FormatVerdict::Order {
                first: Tag::ALL[t],
                second: Tag::ALL[t + 1],
            };
        }
    }
    FormatVerdict::Valid
}

/// `validate_response_structure(processed_str)`.
#[inline]
pub fn validate_response_structure(processed: &str) -> bool {
    check_format(processed).is_valid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_layouts() {
        assert!(validate_response_structure(
            "<think>a</think><answer>b</answer>"
        ));
        assert!(validate_response_structure(
            "pre<think>\n</think>\nmid<answer></answer>post"
        ));
    }

    #[test]
    fn counts_fail_first() {
        assert_eq!(
            check_format("<think><think></think><answer></answer>"),
            FormatVerdict::TagCount {
                tag: Tag::Think,
                count: 2
            }
        );
        assert_eq!(
            check_format("<think></think><answer>"),
            FormatVerdict::TagCount {
                tag: Tag::AnswerEnd,
                count: 0
            }
        );
    }

    #[test]
    fn order_failures() {
        assert_eq!(
            check_format("</think><think><answer></answer>"),
            FormatVerdict::Order {
                first: Tag::Think,
                second: Tag::ThinkEnd
            }
        );
        assert_eq!(
            check_format("<think><answer></think></answer>"),
            FormatVerdict::Order {
                first: Tag::ThinkEnd,
                second: Tag::Answer
            }
        );
        assert_eq!(
            check_format("<think></think></answer><answer>"),
            FormatVerdict::Order {
                first: Tag::Answer,
                second: Tag::AnswerEnd
            }
        );
    }
}
