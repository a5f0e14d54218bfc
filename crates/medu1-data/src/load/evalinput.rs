//! The MedQA / MedMCQA / MMLU eval inputs (MedXpertQA's evaluation format): the options are
//! inline in `question` after `\nAnswer Choices: (A) … (B) …` and `label` is `["B"]`.
//!
//! The options are parsed out into the sample and the question keeps only the stem, so the
//! released variant lists them once as `A: …` lines.

use super::fields::{Ctx, check_letter, copy_extra, opt_text, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Choice, Sample, Task};
use std::path::Path;

const MARKER: &str = "\nAnswer Choices:";

/// The data source of a file: `--source`, else the record fields, else the path.
pub(crate) fn source_for(path: &Path, first: Option<&OValue>, ctx: &Ctx) -> String {
    if let Some(s) = &ctx.source {
        return s.clone();
    }
    if let Some(v) = first {
        if v.get("subject_name").is_some() {
            return "MedMCQA".into();
        }
        if v.get("subject").is_some() {
            return "MMLU".into();
        }
    }
    let p = path.to_string_lossy().to_lowercase();
    if p.contains("medmcqa") {
        "MedMCQA".into()
    } else if p.contains("mmlu") {
        "MMLU".into()
    } else {
        "MedQA".into()
    }
}

pub fn parse(v: &OValue, index: usize, ctx: &Ctx, source: &str) -> Result<Sample, FieldError> {
    let full = req_str(v, "question")?;
    let (stem, options) = split_choices(&full)
        .ok_or_else(|| FieldError::new("question", "no `Answer Choices: (A) …` list"))?;
    let answer = super::medxpertqa::label(v)?;
    check_letter(&answer, &options, "label")?;
    let mut extra = serde_json::Map::new();
    copy_extra(
        v,
        &["subject_name", "topic_name", "subject", "label_rationale"],
        &mut extra,
    );
    Ok(Sample {
        source: source.to_string(),
        id: opt_text(v, "id")?.unwrap_or_else(|| index.to_string()),
        split: ctx.split_for(None),
        question: stem.to_string(),
        task: Task::MultipleChoice { options },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}

/// Splits `stem\nAnswer Choices: (A) x (B) y` into the stem and the options. Letters must run
/// A, B, C, … in order; each option's text ends where the next letter's ` (X) ` begins.
pub fn split_choices(question: &str) -> Option<(&str, Vec<Choice>)> {
    let at = question.rfind(MARKER)?;
    let stem = &question[..at];
    let mut rest = question[at + MARKER.len()..].trim_start();
    let mut out = Vec::new();
    let mut letter = b'A';
    loop {
        let tag = format!("({}) ", char::from(letter));
        rest = rest.strip_prefix(&tag)?;
        let next = format!(" ({}) ", char::from(letter + 1));
        match rest.find(&next) {
            Some(end) if letter < b'Z' => {
                out.push(Choice {
                    letter: char::from(letter).to_string(),
                    text: rest[..end].to_string(),
                });
                rest = &rest[end + 1..];
                letter += 1;
            }
            _ => {
                out.push(Choice {
                    letter: char::from(letter).to_string(),
                    text: rest.trim_end().to_string(),
                });
                return Some((stem, out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_inline_choices() {
        let (stem, opts) =
            super::split_choices("Q (x)?\nAnswer Choices: (A) a (1) (B) b (C) c.").unwrap();
        assert_eq!(stem, "Q (x)?");
        let t: Vec<_> = opts
            .iter()
            .map(|c| (c.letter.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(t, [("A", "a (1)"), ("B", "b"), ("C", "c.")]);
        assert!(super::split_choices("no choices").is_none());
    }
}
