//! What a run writes down: one [`ItemRecord`] per line of the per-item log (`items.jsonl`), with
//! its [`ResponseRecord`]s, and the [`RunMeta`] of `run.json`. The runner writes them, [`crate::resume`]
//! reads them back, [`crate::metrics`] and [`crate::report`] aggregate them; they depend on nothing
//! else in the crate but the generation parameters.

use medu1_core::FinishReason;
use serde::{Deserialize, Serialize};

use crate::backend::GenParams;

/// One sampled response and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    pub text: String,
    pub tokens: usize,
    pub finish: FinishReason,
    pub extracted: Option<String>,
    pub correct: bool,
    pub format_ok: bool,
    pub train_reward: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line of the per-item log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub benchmark: String,
    /// Position in the benchmark file (the resume key, with the benchmark).
    pub index: usize,
    pub id: String,
    pub source: String,
    pub kind: String,
    /// The concrete rule that graded it.
    pub rule: String,
    pub num_tokens: i64,
    pub ground_truth: String,
    pub prompt: String,
    pub responses: Vec<ResponseRecord>,
}

/// The settings that must not change between a run and its resumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub backend: String,
    pub n: usize,
    pub params: GenParams,
    pub budget: String,
    pub budget_seed: i64,
    pub rule: String,
    pub profile: String,
    pub variant: String,
    pub template: String,
}
