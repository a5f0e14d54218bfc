//! Rollouts: n sampled responses per prompt from the current policy, and their rewards.
//!
//! The reward is pluggable ([`Rewarder`]) so toy tasks can test the learning loop; the default is
//! the Med-U1 reward with the scored string and length built as the reference's reward manager
//! builds them (spec §3): prompt + response with special tokens kept, length counted in response
//! tokens including the end-of-sequence token.

use medu1_core::{Completion, FinishReason};
use medu1_model::{Model, SamplingParams, Tokenizer};
use medu1_reward::{Input, Limit, Profile, ScoreOptions, ScoreRequest, score_request, val_score};

use crate::dataset::PromptItem;

/// One response and its reward.
#[derive(Debug, Clone)]
pub struct Scored {
    pub completion: Completion,
    /// Response length as the length term sees it (prefill + generated tokens).
    pub length: usize,
    pub reward: f64,
    /// 0/1 correctness (the Med-U1 validation scorer).
    pub correct: bool,
    pub format_ok: bool,
    /// The reference scorer raised; `reward` is the configured error reward.
    pub error: bool,
}

/// What a reward function sees of one response.
#[derive(Debug)]
pub struct RewardInput<'a> {
    pub item: &'a PromptItem,
    /// The decoded response (generated tokens only, special tokens kept).
    pub response: &'a str,
    pub length: usize,
    pub finish: FinishReason,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardOutput {
    pub reward: f64,
    pub correct: bool,
    pub format_ok: bool,
    pub error: bool,
}

/// A reward function over responses.
pub trait Rewarder: Sync + std::fmt::Debug {
    fn reward(&self, input: &RewardInput<'_>) -> RewardOutput;
}

/// The Med-U1 reward with a profile.
#[derive(Debug, Clone)]
pub struct MedU1Rewarder {
    pub profile: Profile,
    pub error_reward: f64,
}

impl Rewarder for MedU1Rewarder {
    fn reward(&self, x: &RewardInput<'_>) -> RewardOutput {
        let (lo, hi) = x.item.limits();
        let limit = |v: Option<&str>| match v {
            Some(s) => medu1_reward::LimitValue::Str(s.to_string()),
            None => medu1_reward::LimitValue::Null,
        };
        let req = ScoreRequest {
            data_source: x.item.sample.source.clone(),
            prompt: Some(x.item.text.clone()),
            response: Some(x.response.to_string()),
            ground_truth: x.item.ground_truth.clone(),
            lower_limit: limit(lo),
            upper_limit: limit(hi),
            num_tokens: x.item.budget.num_tokens(),
            valid_response_length: Some(x.length as f64),
            ..Default::default()
        };
        match score_request(&self.profile, &req, ScoreOptions::default()) {
            Ok(o) => {
                let sol = format!("{}{}", x.item.text, x.response);
                let input = Input {
                    data_source: &req.data_source,
                    solution_str: &sol,
                    ground_truth: &req.ground_truth,
                    lower_limit: lo.map_or(Limit::Missing, Limit::Str),
                    upper_limit: hi.map_or(Limit::Missing, Limit::Str),
                    num_tokens: req.num_tokens,
                    valid_response_length: x.length as f64,
                };
                let correct = val_score(&self.profile, &input).unwrap_or(0.0) > 0.0;
                RewardOutput {
                    reward: o.reward,
                    correct,
                    format_ok: o.format_valid,
                    error: false,
                }
            }
            Err(_) => RewardOutput {
                reward: self.error_reward,
                correct: false,
                format_ok: false,
                error: true,
            },
        }
    }
}

/// Generates `n` responses for each item and scores them; `out[prompt * n + k]`.
pub fn rollout(
    model: &Model,
    tokenizer: &Tokenizer,
    items: &[&PromptItem],
    n: usize,
    params: &SamplingParams,
    rewarder: &dyn Rewarder,
    on_tokens: &mut dyn FnMut(usize),
) -> medu1_model::Result<(Vec<Scored>, medu1_model::GenerationStats)> {
    let prompts: Vec<Vec<u32>> = items.iter().map(|i| i.ids.clone()).collect();
    let generation = medu1_model::generate(model, tokenizer, &prompts, n, params, on_tokens)?;
    let mut out = Vec::with_capacity(items.len() * n);
    for (item, completions) in items.iter().zip(generation.completions) {
        for completion in completions {
            // The reference decodes with special tokens kept, so an EOS shows as `<|im_end|>`.
            let response = tokenizer.decode(&completion.token_ids, false)?;
            let length = item.prefill_tokens + completion.token_ids.len();
            let r = rewarder.reward(&RewardInput {
                item,
                response: &response,
                length,
                finish: completion.finish,
            });
            out.push(Scored {
                completion,
                length,
                reward: r.reward,
                correct: r.correct,
                format_ok: r.format_ok,
                error: r.error,
            });
        }
    }
    Ok((out, generation.stats))
}
