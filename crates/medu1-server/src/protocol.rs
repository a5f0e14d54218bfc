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
///  "lower_limit": null, "upper_limit": null, "eos": "in_text"}
/// ```
/// `split`, `index` and `output_type` (written by `medu1 data prepare`) are accepted and not
/// used for scoring. Optional: `response_length` (tokens including the end-of-sequence token when
/// the response has one; else the server counts them with its tokenizer under the `eos`
/// convention, see [`Eos`]), `truncated`, `max_response_length` and `settings`.
///
/// Any other key is rejected (422 naming it): a typo such as `num_token` would otherwise drop the
/// length term without a word. The keys verl adds to `extra_info` ([`FRAMEWORK_KEYS`]) are
/// accepted, and `"allow_unknown_keys": true` accepts everything else.
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
    pub eos: Option<Eos>,
    #[serde(default)]
    pub truncated: Option<bool>,
    #[serde(default)]
    pub max_response_length: Option<u64>,
    #[serde(default)]
    pub settings: Option<SettingsOverride>,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub index: Option<i64>,
    #[serde(default)]
    pub output_type: Option<String>,
    #[serde(default)]
    pub allow_unknown_keys: bool,
    /// Everything else, checked by [`Label::unknown_key`].
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Keys verl puts in a row's `extra_info` (its reward managers add `num_turns` and
/// `rollout_reward_scores`; its tool and interaction datasets carry the `*_kwargs` keys), so a
/// client that forwards `extra_info` as the label is not rejected for them.
pub const FRAMEWORK_KEYS: &[&str] = &[
    "num_turns",
    "rollout_reward_scores",
    "tools_kwargs",
    "interaction_kwargs",
    "need_tools_kwargs",
];

impl Label {
    /// A plain ground-truth label.
    pub fn plain(ground_truth: String, data_source: Option<String>) -> Label {
        Label {
            ground_truth,
            data_source,
            num_tokens: -1,
            lower_limit: LimitValue::Null,
            upper_limit: LimitValue::Null,
            response_length: None,
            eos: None,
            truncated: None,
            max_response_length: None,
            settings: None,
            split: None,
            index: None,
            output_type: None,
            allow_unknown_keys: false,
            other: BTreeMap::new(),
        }
    }

    /// The first key that is neither a label field nor a framework key, unless the label opted out.
    pub fn unknown_key(&self) -> Option<&str> {
        if self.allow_unknown_keys {
            return None;
        }
        self.other
            .keys()
            .map(String::as_str)
            .find(|k| !FRAMEWORK_KEYS.contains(k))
    }
}

/// How the response text relates to the end-of-sequence (EOS) token, which the reference counts
/// in the response length L (spec §3) when generation stopped on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Eos {
    /// Decoded with special tokens kept (OpenRLHF's query): a response that stopped on EOS ends
    /// with it and the tokenizer counts it once; a truncated one has none. The default.
    InText,
    /// Decoded with special tokens skipped (verl, TRL): the EOS is not in the text, so it is added
    /// unless the response was truncated, which the request states with `truncated` or lets the
    /// server infer from `max_response_length` (a count reaching it was cut off).
    Stripped,
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
