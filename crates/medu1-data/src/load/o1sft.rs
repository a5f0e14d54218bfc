//! medical-o1-reasoning-SFT (HuatuoGPT-o1): `Question`, `Complex_CoT`, `Response`.
//!
//! Med-U1 wraps the response as `<answer>\n{Response}\n</answer>\n` (the form its `huatuo*.json`
//! items carry); the sample keeps that raw form for the published-script variant and the released
//! files' stripped form (`{Response}\n`) as its answer. `Complex_CoT` becomes `Sample::reasoning`.

use super::fields::{Ctx, opt_text, req_str};
use crate::ovalue::OValue;
use crate::prompt::{RAW_ANSWER_KEY, strip_answer_tags};
use crate::record::FieldError;
use medu1_core::{Budget, Sample, Task};

pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let question = req_str(v, "Question")?;
    let response = req_str(v, "Response")?;
    let raw = format!("<answer>\n{response}\n</answer>\n");
    let mut extra = serde_json::Map::new();
    extra.insert(RAW_ANSWER_KEY.into(), raw.clone().into());
    Ok(Sample {
        source: ctx
            .source
            .clone()
            .unwrap_or_else(|| "medical-o1-reasoning-SFT".into()),
        id: opt_text(v, "id")?.unwrap_or_else(|| index.to_string()),
        split: ctx.split_for(None),
        question,
        task: Task::FreeText,
        answer: strip_answer_tags(&raw),
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: opt_text(v, "Complex_CoT")?,
        extra,
    })
}
