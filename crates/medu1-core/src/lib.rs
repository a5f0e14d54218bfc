//! Shared types that flow through every stage of medu1: a benchmark item ([`Sample`]), its length
//! [`Budget`], and a model's [`Completion`].
//!
//! This crate exists so that data loading, scoring, training, evaluation and the reward server agree
//! on one vocabulary without depending on each other. It is deliberately light: serde only.

use serde::{Deserialize, Serialize};

pub mod atomic;
pub mod budget;
pub mod error;
pub mod pywhite;
pub mod seed;
pub mod testing;

pub use budget::Budget;

/// The three output formats Med-U1 trains one model for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Graded by the option letter.
    MultipleChoice,
    /// MedCalc-Bench style: a number inside limits, or an exact date / week-day tuple.
    Calculation,
    /// Graded by word overlap against a reference answer.
    FreeText,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::MultipleChoice => "multiple_choice",
            TaskKind::Calculation => "calculation",
            TaskKind::FreeText => "free_text",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a calculation answer looks like, which decides how it is graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalcOutput {
    /// A number, correct when inside the inclusive lower/upper limits.
    Numeric,
    /// A date `MM/DD/YYYY`, exact match.
    Date,
    /// A gestational-age tuple such as `('17 weeks', '6 days')`, exact match.
    WeekDay,
}

impl CalcOutput {
    /// Classifies a MedCalc-Bench ground-truth answer string the way the reference grades it:
    /// anything Python's `float()` would not parse is an exact-match answer.
    pub fn classify(answer: &str) -> CalcOutput {
        let a = answer.trim();
        if a.starts_with('(') {
            CalcOutput::WeekDay
        } else if a.contains('/') {
            CalcOutput::Date
        } else {
            CalcOutput::Numeric
        }
    }
}

/// One option of a multiple-choice item, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub letter: String,
    pub text: String,
}

/// The task-specific part of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    MultipleChoice {
        /// Ordered options; may be empty when the question text already lists them
        /// (verl rows, whose prompt is fixed).
        options: Vec<Choice>,
    },
    Calculation {
        /// Limits as the source stores them (strings), so the reference's `float()` parsing applies.
        lower_limit: Option<String>,
        upper_limit: Option<String>,
        output: CalcOutput,
    },
    FreeText,
}

impl Task {
    pub fn kind(&self) -> TaskKind {
        match self {
            Task::MultipleChoice { .. } => TaskKind::MultipleChoice,
            Task::Calculation { .. } => TaskKind::Calculation,
            Task::FreeText => TaskKind::FreeText,
        }
    }
}

/// One benchmark item, whatever file format it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The reference's `data_source` string (`MedIQ`, `MedXpertQA`, `EHRNoteQA`, `MedCalc-Bench`,
    /// `medical-o1-reasoning-SFT`, `MMLU-Pro`, ...). It selects the grading branch.
    pub source: String,
    /// A stable identifier within the source (row index when the source has none).
    pub id: String,
    /// `train`, `test`, `validation`, ...
    pub split: String,
    /// The question text without options (for MCQ) and without any template.
    pub question: String,
    pub task: Task,
    /// The ground truth as the reward functions receive it.
    pub answer: String,
    pub budget: Budget,
    /// A prompt already rendered by the source (verl rows). When present it is used verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_prompt: Option<String>,
    /// The reference reasoning chain, where the source has one (medical-o1-reasoning-SFT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Anything else the source carries that a later stage may want (e.g. MedCalc calculator id,
    /// relevant entities); never used for grading.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Sample {
    pub fn kind(&self) -> TaskKind {
        self.task.kind()
    }
}

/// A model's answer to one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text only (no prompt).
    pub text: String,
    /// The generated token ids, including a final stop token if one was produced.
    #[serde(default)]
    pub token_ids: Vec<u32>,
    /// Per-token log-probabilities of `token_ids` under the sampling distribution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<f32>,
    /// Why generation stopped.
    pub finish: FinishReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// The token limit was reached.
    Length,
}
