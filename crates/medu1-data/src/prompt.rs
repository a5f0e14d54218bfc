//! The Med-U1 prompt builder (spec §1).
//!
//! Two versions of the reference builder disagree (spec §1.1), and both matter: the released
//! parquet files are what the published models saw ([`Variant::ReleasedParquet`], the default),
//! while the published data script is what users re-running the code get
//! ([`Variant::PublishedScript`]). The variants differ in the MCQ system prompt, whether options are
//! appended to the question, the free-text ground truth, and the stored record's key order.
//!
//! Assembly (both variants): `user = f"{question} {TYPE_TEMPLATE} {budget_sentence}"` — note the
//! two spaces before "Please" and the trailing space when there is no budget — then the chat
//! template renders `[system, user]` with the generation prompt.

use crate::record::{ExtraInfo, KeyOrder, RewardModel, VerlRecord};
use crate::template::{ChatTemplate, Message, TemplateError};
use medu1_core::{Budget, Sample, Task, TaskKind};
use std::fmt;
use std::str::FromStr;

/// System prompt for free text and calculation (and everything, in the published script).
pub const SYS_OPEN: &str = "You are a helpful medical assistant. Please consider the provided question, as if you were a human pondering deeply. Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions. It's encouraged to include self-reflection or verification in the reasoning process. Provide your detailed reasoning within the <think> </think> tags and final answer within the <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think><answer> final answer here </answer>.";

/// System prompt for multiple choice in the released parquet files.
pub const SYS_MCQ: &str = "You are a helpful medical assistant. There is a conversation between User and Assistant. The user asks a medical question, and the Assistant solves it. The Assistant first thinks about the reasoning process in the mind and then provides the user with just the final answer. The reasoning process and final answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think><answer> final answer here </answer>.";

/// `TYPE_TEMPLATE["multiple choice"]` (leading space included).
pub const TYPE_MCQ: &str = " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.";
/// `TYPE_TEMPLATE["arithmetical"]` (leading space included).
pub const TYPE_CALC: &str = " Please provide the numerical value (e.g., 42 or 3.14) or specific answer (e.g., 10/25/2020 or ('17 weeks', '6 days')) within the <answer> </answer> tags.";
/// `TYPE_TEMPLATE["free-form"]` (leading space included).
pub const TYPE_FREE: &str = " Please provide your text answer within the <answer> </answer> tags.";

/// `Sample::extra` key holding the source's raw ground truth when the canonical answer differs
/// (free text: the raw answer keeps its `<answer>` tags, which the published script stores).
pub const RAW_ANSWER_KEY: &str = "raw_answer";

/// Which reference builder to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// What the released parquet files contain (and the released models saw).
    #[default]
    ReleasedParquet,
    /// What `scripts/data/deepscaler_dataset.py` produces as published.
    PublishedScript,
}

impl Variant {
    /// The key order records of this variant are stored with.
    pub fn key_order(self) -> KeyOrder {
        match self {
            Variant::ReleasedParquet => KeyOrder::Sorted,
            Variant::PublishedScript => KeyOrder::Script,
        }
    }
}

/// A variant name other than `released` or `script`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown prompt variant `{0}` (expected released or script)")]
pub struct VariantError(pub String);

impl FromStr for Variant {
    type Err = VariantError;
    fn from_str(s: &str) -> Result<Variant, VariantError> {
        match s {
            "released" | "parquet" | "released-parquet" => Ok(Variant::ReleasedParquet),
            "script" | "published" | "published-script" => Ok(Variant::PublishedScript),
            _ => Err(VariantError(s.to_string())),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::ReleasedParquet => "released",
            Variant::PublishedScript => "script",
        })
    }
}

/// The system prompt for a task kind.
pub fn system_prompt(kind: TaskKind, variant: Variant) -> &'static str {
    match (kind, variant) {
        (TaskKind::MultipleChoice, Variant::ReleasedParquet) => SYS_MCQ,
        _ => SYS_OPEN,
    }
}

/// The answer-type instruction (with its leading space).
pub fn type_instruction(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::MultipleChoice => TYPE_MCQ,
        TaskKind::Calculation => TYPE_CALC,
        TaskKind::FreeText => TYPE_FREE,
    }
}

/// The question as the variant shows it: the released files append `L: text` option lines.
pub fn question_text(sample: &Sample, variant: Variant) -> String {
    match (&sample.task, variant) {
        (Task::MultipleChoice { options }, Variant::ReleasedParquet) if !options.is_empty() => {
            let mut q = sample.question.clone();
            for c in options {
                q.push('\n');
                q.push_str(&c.letter);
                q.push_str(": ");
                q.push_str(&c.text);
            }
            q
        }
        _ => sample.question.clone(),
    }
}

/// The user message: `f"{question} {TYPE_TEMPLATE} {budget_instruction}"`.
pub fn user_message(sample: &Sample, variant: Variant, budget: Budget) -> String {
    format!(
        "{} {} {}",
        question_text(sample, variant),
        type_instruction(sample.kind()),
        budget.instruction()
    )
}

/// The released files' free-text ground truth: the leading `"<answer>\n"` and every
/// `"</answer>\n"` removed (so a trailing newline remains).
pub fn strip_answer_tags(raw: &str) -> String {
    raw.strip_prefix("<answer>\n")
        .unwrap_or(raw)
        .replace("</answer>\n", "")
}

/// The ground truth stored in `reward_model.ground_truth` for this variant.
pub fn ground_truth(sample: &Sample, variant: Variant) -> String {
    let raw = sample
        .extra
        .get(RAW_ANSWER_KEY)
        .and_then(|v| v.as_str())
        .unwrap_or(&sample.answer);
    match (sample.kind(), variant) {
        (TaskKind::FreeText, Variant::ReleasedParquet) => strip_answer_tags(raw),
        (_, Variant::PublishedScript) => raw.to_string(),
        _ => sample.answer.clone(),
    }
}

/// The `[system, user]` chat for a sample.
pub fn messages(sample: &Sample, variant: Variant, budget: Budget) -> Vec<Message> {
    vec![
        Message::system(system_prompt(sample.kind(), variant)),
        Message::user(user_message(sample, variant, budget)),
    ]
}

/// Builds prompts and verl records with one variant and one chat template.
#[derive(Debug)]
pub struct PromptBuilder {
    pub variant: Variant,
    pub template: ChatTemplate,
}

impl Default for PromptBuilder {
    fn default() -> PromptBuilder {
        PromptBuilder::new(Variant::ReleasedParquet)
    }
}

impl PromptBuilder {
    /// The reference setup: Qwen2.5's ChatML template.
    pub fn new(variant: Variant) -> PromptBuilder {
        PromptBuilder {
            variant,
            template: ChatTemplate::qwen25(),
        }
    }

    pub fn with_template(mut self, template: ChatTemplate) -> PromptBuilder {
        self.template = template;
        self
    }

    /// The templated prompt (single template, generation prompt appended), i.e. the stored
    /// `prompt[0].content` and what evaluation feeds the model.
    pub fn render(&self, sample: &Sample, budget: Budget) -> Result<String, TemplateError> {
        self.template
            .render(&messages(sample, self.variant, budget), true)
    }

    /// The string the trainer actually tokenizes (spec §1.5 double template).
    pub fn render_training(
        &self,
        sample: &Sample,
        budget: Budget,
    ) -> Result<String, TemplateError> {
        self.template
            .render_training_prompt(&self.render(sample, budget)?)
    }

    /// The stored verl record for `sample` at position `index` of its output file.
    pub fn record(
        &self,
        sample: &Sample,
        budget: Budget,
        index: i64,
    ) -> Result<VerlRecord, TemplateError> {
        let (lower_limit, upper_limit) = match &sample.task {
            Task::Calculation {
                lower_limit,
                upper_limit,
                ..
            } => (lower_limit.clone(), upper_limit.clone()),
            _ => (None, None),
        };
        Ok(VerlRecord {
            data_source: sample.source.clone(),
            prompt: vec![Message::user(self.render(sample, budget)?)],
            ability: "medical".into(),
            reward_model: RewardModel {
                style: "rule".into(),
                ground_truth: ground_truth(sample, self.variant),
                num_tokens: budget.num_tokens(),
                lower_limit,
                upper_limit,
            },
            extra_info: ExtraInfo {
                split: sample.split.clone(),
                index,
                reward: None,
            },
        })
    }
}

/// Splits a rendered user message back into question and budget, for rows that only carry the
/// templated prompt (verl files): `(question, budget)` when `user` ends with the kind's type
/// instruction followed by a budget sentence.
pub fn parse_user_message(user: &str, kind: TaskKind) -> Option<(String, Budget)> {
    let marker = format!(" {} ", type_instruction(kind));
    let at = user.rfind(&marker)?;
    let question = &user[..at];
    let tail = &user[at + marker.len()..];
    let budget = if tail.is_empty() {
        Budget::None
    } else if let Some(n) = tail
        .strip_prefix("Think for maximum ")
        .and_then(|t| t.strip_suffix(" tokens."))
    {
        Budget::from_num_tokens(-n.parse::<i64>().ok()?)
    } else {
        let n = tail.strip_prefix("Think for ")?.strip_suffix(" tokens.")?;
        Budget::from_num_tokens(n.parse::<i64>().ok()?)
    };
    Some((question.to_string(), budget))
}

#[cfg(test)]
mod tests {
    use super::*;
    use medu1_core::Choice;

    fn mcq() -> Sample {
        Sample {
            source: "MedIQ".into(),
            id: "1".into(),
            split: "test".into(),
            question: "Q?".into(),
            task: Task::MultipleChoice {
                options: vec![
                    Choice {
                        letter: "A".into(),
                        text: "x".into(),
                    },
                    Choice {
                        letter: "B".into(),
                        text: "y".into(),
                    },
                ],
            },
            answer: "B".into(),
            budget: Budget::None,
            rendered_prompt: None,
            reasoning: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn user_message_quirks() {
        let s = mcq();
        assert_eq!(
            user_message(&s, Variant::ReleasedParquet, Budget::None),
            format!("Q?\nA: x\nB: y {TYPE_MCQ} ")
        );
        assert_eq!(
            user_message(&s, Variant::PublishedScript, Budget::Maximum(256)),
            format!("Q? {TYPE_MCQ} Think for maximum 256 tokens.")
        );
    }

    #[test]
    fn parse_user_message_inverts_user_message() {
        let s = mcq();
        for b in [Budget::None, Budget::Exact(100), Budget::Maximum(300)] {
            let u = user_message(&s, Variant::PublishedScript, b);
            assert_eq!(
                parse_user_message(&u, TaskKind::MultipleChoice),
                Some(("Q?".to_string(), b))
            );
        }
    }

    #[test]
    fn free_text_ground_truth_per_variant() {
        assert_eq!(strip_answer_tags("<answer>\nX\n</answer>\n"), "X\n");
        assert_eq!(strip_answer_tags("X"), "X");
    }
}
