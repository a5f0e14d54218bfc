//! The server's configuration and the state its handlers share.

use std::sync::Arc;
use std::time::Duration;

use medu1_reward::Profile;

use crate::metrics::Metrics;

/// Counts response tokens for the length term when the client does not send the length.
pub trait TokenCounter: Send + Sync + std::fmt::Debug {
    fn count(&self, text: &str) -> usize;
}

/// Server settings (`medu1 serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub profile: Profile,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most samples in one request.
    pub max_batch: usize,
    /// Scoring time limit per request.
    pub request_timeout: Duration,
    /// Data source for `/reward` labels that carry none.
    pub default_source: Option<String>,
    /// Reward given to a `/reward` sample the reference would raise on; `None` rejects the request.
    pub error_reward: Option<f64>,
    /// Tokens the end-of-sequence marker adds to a counted response length when the text was
    /// decoded without it (`eos: "stripped"`) and the response was not truncated.
    pub eos_tokens: usize,
    /// Batches at least this large are scored on all cores.
    pub parallel_threshold: usize,
    /// Time a client has to send a request's headers; the connection is closed after it.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once the headers are in; answered 408 after it.
    pub body_read_timeout: Duration,
    /// How long a shutdown waits for requests in flight before the server stops anyway.
    pub shutdown_timeout: Duration,
    /// Rouge-L (a component of `/score`, never part of a reward) is skipped for an answer or
    /// ground truth longer than this many normalised words; `None`: no cap.
    pub max_rouge_words: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            profile: Profile::med_u1(),
            max_body_bytes: 64 << 20,
            max_batch: 8192,
            request_timeout: Duration::from_secs(30),
            default_source: None,
            error_reward: None,
            eos_tokens: 1,
            parallel_threshold: 64,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            max_rouge_words: Some(medu1_reward::DEFAULT_MAX_ROUGE_WORDS),
        }
    }
}

#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub counter: Option<Arc<dyn TokenCounter>>,
    pub metrics: Metrics,
}
