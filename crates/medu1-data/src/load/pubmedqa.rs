//! PubMedQA PQA-L (`ori_pqal.json`, keyed by PMID) and its test key (`test_ground_truth.json`).
//!
//! Items become three-option multiple choice (A yes, B no, C maybe), graded by letter. When the
//! test key sits beside the data file, keyed PMIDs get split `test` and the rest `train`, and the
//! key must agree with the item's `final_decision`.

use super::fields::{Ctx, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Choice, Sample, Task};
use std::collections::HashMap;
use std::path::Path;

const DECISIONS: [(&str, &str); 3] = [("A", "yes"), ("B", "no"), ("C", "maybe")];
/// The key's usual file name.
pub const KEY_FILE: &str = "test_ground_truth.json";

fn options() -> Vec<Choice> {
    DECISIONS
        .iter()
        .map(|(l, t)| Choice {
            letter: (*l).into(),
            text: (*t).into(),
        })
        .collect()
}

fn letter_of(decision: &str, field: &str) -> Result<String, FieldError> {
    DECISIONS
        .iter()
        .find(|(_, d)| *d == decision)
        .map(|(l, _)| (*l).to_string())
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("expected yes, no or maybe, found `{decision}`"),
            )
        })
}

/// The test key beside `path`, if present and readable.
pub(crate) fn sibling_key(path: &Path) -> Option<HashMap<String, String>> {
    let key = path.parent()?.join(KEY_FILE);
    let v: OValue = serde_json::from_slice(&std::fs::read(key).ok()?).ok()?;
    Some(
        v.as_object()?
            .iter()
            .filter_map(|(k, d)| Some((k.clone(), d.as_str()?.to_string())))
            .collect(),
    )
}

pub(crate) fn parse(
    pmid: &str,
    v: &OValue,
    ctx: &Ctx,
    key: Option<&HashMap<String, String>>,
) -> Result<Sample, FieldError> {
    let q = req_str(v, "QUESTION")?;
    let contexts = match v.get("CONTEXTS") {
        Some(OValue::Array(parts)) => parts
            .iter()
            .filter_map(OValue::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            return Err(FieldError::new(
                "CONTEXTS",
                "missing or not a list of strings",
            ));
        }
    };
    let decision = req_str(v, "final_decision")?;
    let answer = letter_of(&decision, "final_decision")?;
    let split = match key {
        Some(k) => match k.get(pmid) {
            Some(d) if *d != decision => {
                return Err(FieldError::new(
                    "final_decision",
                    format!("`{decision}` disagrees with the test key's `{d}`"),
                ));
            }
            Some(_) => ctx.split_for(Some("test")),
            None => ctx.split_for(Some("train")),
        },
        None => ctx.split_for(None),
    };
    let mut extra = serde_json::Map::new();
    super::fields::copy_extra(v, &["LONG_ANSWER", "MESHES", "YEAR", "LABELS"], &mut extra);
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "PubMedQA".into()),
        id: pmid.to_string(),
        split,
        question: format!("<Context>{contexts}</Context> <Question>{q}</Question>"),
        task: Task::MultipleChoice { options: options() },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}

/// A key entry alone: a sample without a question (useful for counting and joining by id).
pub(crate) fn parse_key_entry(pmid: &str, v: &OValue, ctx: &Ctx) -> Result<Sample, FieldError> {
    let d = v
        .as_str()
        .ok_or_else(|| FieldError::new(pmid, "expected yes, no or maybe"))?;
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "PubMedQA".into()),
        id: pmid.to_string(),
        split: ctx.split_for(Some("test")),
        question: String::new(),
        task: Task::MultipleChoice { options: options() },
        answer: letter_of(d, pmid)?,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra: Default::default(),
    })
}
