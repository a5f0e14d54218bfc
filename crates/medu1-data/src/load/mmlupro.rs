//! MMLU-Pro rows: `question`, `options` (a list of up to 10 texts, lettered A, B, …), `answer`.

use super::fields::{Ctx, check_letter, copy_extra, letter_at, opt_text, options_field, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Sample, Task};

pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let question = req_str(v, "question")?;
    let options = options_field(v, "options")?;
    let answer = match opt_text(v, "answer")? {
        Some(a) => a,
        None => {
            let i = v
                .get("answer_index")
                .and_then(OValue::as_i64)
                .ok_or_else(|| FieldError::new("answer", "missing"))?;
            letter_at(
                usize::try_from(i).map_err(|_| FieldError::new("answer_index", "negative"))?,
                "answer_index",
            )?
        }
    };
    check_letter(&answer, &options, "answer")?;
    let mut extra = serde_json::Map::new();
    copy_extra(v, &["category", "src", "cot_content"], &mut extra);
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "MMLU-Pro".into()),
        id: opt_text(v, "question_id")?.unwrap_or_else(|| index.to_string()),
        split: ctx.split_for(None),
        question,
        task: Task::MultipleChoice { options },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}
