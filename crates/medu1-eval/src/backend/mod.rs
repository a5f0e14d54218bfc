//! Generation backends: one trait for the local runtime and remote OpenAI-compatible servers.
//!
//! The runner hands a backend both forms of every prompt: the fully templated text (what the
//! Med-U1 reference feeds vLLM and what `/v1/completions` and the local model consume) and the
//! `[system, user]` messages (for `/v1/chat/completions`, where the server applies its own chat
//! template). Each backend reports the response length in tokens, which the length statistics
//! and the training reward need.

pub mod local;
pub mod openai;

use medu1_core::FinishReason;
use medu1_data::Message;
use serde::{Deserialize, Serialize};

use crate::error::BackendError;

/// One prompt in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The chat-templated prompt, generation header included.
    pub text: String,
    /// The same conversation as messages.
    pub messages: Vec<Message>,
    /// This prompt's sampling seed, derived from the run seed and the item (not its position in a
    /// batch), so that a resumed run or another batch size samples the same responses.
    pub seed: u64,
}

/// Sampling settings shared by every backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k (not every server supports it; sent only when set).
    pub top_k: usize,
    pub max_tokens: usize,
    /// The run's seed; each [`Prompt::seed`] is derived from it.
    pub seed: u64,
    /// Strings that end a response.
    #[serde(default)]
    pub stop: Vec<String>,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 512,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    /// Response length in tokens (the server's `usage.completion_tokens`, or the local count).
    pub tokens: usize,
    pub finish: FinishReason,
    /// Set when the backend could not produce this response (the request was rejected); the
    /// response is then empty and graded wrong.
    pub error: Option<String>,
}

/// Something that turns prompts into `n` responses each.
pub trait Backend {
    /// A short description for the report (`local:/path/model.gguf`, `openai:http://...`).
    fn describe(&self) -> String;
    /// How many prompts the runner should hand over per call: enough to keep the backend busy,
    /// few enough that a killed run loses little work.
    fn preferred_batch(&self) -> usize {
        8
    }
    /// `result[i][j]` is sample `j` of `prompts[i]`; every inner vector has length `n`.
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError>;
}

impl<B: Backend + ?Sized> Backend for &B {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn preferred_batch(&self) -> usize {
        (**self).preferred_batch()
    }
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        (**self).generate(prompts, params, n)
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn preferred_batch(&self) -> usize {
        (**self).preferred_batch()
    }
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        (**self).generate(prompts, params, n)
    }
}
