//! MediQ and CRAFT-MD JSONL (`all_dev_good.jsonl`, `all_craft_md.jsonl`).
//!
//! The question is written the way Med-U1's MediQ items are: `<Context>{sentences joined by
//! spaces}</Context> <Question>{question}</Question>`; `answer_idx` is the letter.

use super::fields::{Ctx, check_letter, copy_extra, opt_text, options_field, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Sample, Task};

pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let q = req_str(v, "question")?;
    let context = match v.get("context") {
        Some(OValue::Array(parts)) => parts
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| FieldError::new("context", "expected strings"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(" "),
        Some(OValue::String(s)) => s.clone(),
        None | Some(OValue::Null) => String::new(),
        Some(other) => {
            return Err(FieldError::new(
                "context",
                format!("expected a list of strings, found {}", other.type_name()),
            ));
        }
    };
    let options = options_field(v, "options")?;
    let answer = req_str(v, "answer_idx")?;
    check_letter(&answer, &options, "answer_idx")?;
    let mut extra = serde_json::Map::new();
    copy_extra(v, &["answer"], &mut extra);
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "MedIQ".into()),
        id: opt_text(v, "id")?.unwrap_or_else(|| index.to_string()),
        split: ctx.split_for(None),
        question: format!("<Context>{context}</Context> <Question>{q}</Question>"),
        task: Task::MultipleChoice { options },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}
