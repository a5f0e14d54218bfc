//! Request and response bodies of the two scoring routes.
//!
//! `POST /reward` speaks OpenRLHF's remote reward protocol. OpenRLHF sends the decoded
//! prompt + response (`query`), the prompts, and the dataset's label column (`labels`). medu1 puts
//! everything the Med-U1 reward needs into that label as a JSON string (see [`Label`]);
//! `medu1 data prepare --label-format openrlhf` writes it.
//!
//! `POST /score` is the native batch form: a list of [`medu1_reward::ScoreRequest`]s, every field
//! available, per-row results or errors.

use medu1_reward::{LimitValue, SettingsOverride};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The label format for `/reward`. Sent as a JSON string (OpenRLHF's label column is a string) or
/// as a JSON object. A label that is a plain non-JSON string is taken as the ground truth, with
/// the server's `--default-source` as data source.
///
/// ```json
/// {"ground_truth": "C", "data_source": "MedIQ", "num_tokens": -1,
///  "lower_limit": null, "upper_limit": null}
/// ```
/// `split` and `index` (written by `medu1 data prepare`) are accepted and ignored. Optional:
/// `response_length` (tokens including EOS; else the server counts them with its tokenizer) and
/// `settings` (per-sample reward settings).
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub ground_truth: String,
    #[serde(default)]
    pub data_source: Option<String>,
    #[serde(default = "minus_one")]
    pub num_tokens: i64,
    #[serde(default)]
    pub lower_limit: LimitValue,
    #[serde(default)]
    pub upper_limit: LimitValue,
    #[serde(default)]
    pub response_length: Option<f64>,
    #[serde(default)]
    pub settings: Option<SettingsOverride>,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub index: Option<i64>,
}

fn minus_one() -> i64 {
    -1
}

/// OpenRLHF's request: `{"query": [...], "prompts": [...], "labels": [...]}`.
#[derive(Debug, Deserialize)]
pub struct RewardBody {
    pub query: Vec<String>,
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<Vec<serde_json::Value>>,
}

/// OpenRLHF's response: `rewards` drive training; `scores` (0/1 correctness from the Med-U1
/// validation scorer) feed OpenRLHF's dynamic filtering; `extra_logs` are logged per sample.
#[derive(Debug, Serialize)]
pub struct RewardResponse {
    pub rewards: Vec<f64>,
    pub scores: Vec<f64>,
    pub extra_logs: BTreeMap<&'static str, Vec<f64>>,
}

/// `/score`'s request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    /// Each element is parsed on its own, so one malformed row fails only itself.
    pub requests: Vec<serde_json::Value>,
    /// Attach the per-sample trace.
    #[serde(default)]
    pub explain: bool,
    /// Attach all components (EMS, BLEU, Rouge-L, ...).
    #[serde(default)]
    pub components: bool,
}

#[derive(Debug, Serialize)]
pub struct ScoreResponse {
    pub results: Vec<serde_json::Value>,
    pub errors: usize,
}
