//! An OpenAI-compatible HTTP client: how medu1 evaluates models too large for this machine, served
//! by vLLM, SGLang or llama.cpp.
//!
//! Two endpoints: `/v1/completions` gets the already templated Med-U1 prompt, exactly as the
//! reference's `vllm_inference` does, so the server's chat template never interferes;
//! `/v1/chat/completions` gets the `[system, user]` messages for servers that only offer chat.
//! Each of the n samples of a prompt is its own request (seed `prompt.seed + j`), because not every
//! server implements `n`, and `usage.completion_tokens` is then the length of exactly that sample.
//!
//! Requests run concurrently under a semaphore; connection errors, timeouts, 429 and 5xx are
//! retried with exponential backoff; 400/413/422 reject only that request (a prompt too long
//! for the server's context must not end a run of thousands of items: the response is recorded
//! as an error and graded wrong); other failures stop the run, whose finished items are kept.

use std::sync::Arc;
use std::time::Duration;

use medu1_core::FinishReason;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{Backend, GenParams, Generation, Prompt};
use crate::error::{BackendError, EvalError};

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions` with the templated prompt.
    Completions,
    /// `/v1/chat/completions` with messages.
    Chat,
}

impl std::str::FromStr for Api {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Api, EvalError> {
        match s {
            "completions" | "completion" => Ok(Api::Completions),
            "chat" | "chat-completions" => Ok(Api::Chat),
            _ => Err(EvalError::UnknownApi(s.to_string())),
        }
    }
}

/// Connection settings. The API key is passed in by the caller (the CLI reads it from the
/// environment; library code never does).
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL, with or without a trailing `/v1`.
    pub base_url: String,
    pub api: Api,
    /// The served model name; `None` asks `/v1/models` for the first one.
    pub model: Option<String>,
    pub api_key: Option<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// First backoff delay; doubled per retry, capped at 30 s.
    pub backoff: Duration,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, api: Api) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            api,
            model: None,
            api_key: None,
            concurrency: 8,
            max_retries: 4,
            timeout: Duration::from_secs(600),
            backoff: Duration::from_millis(500),
        }
    }
}

/// The client; owns a small tokio runtime so the synchronous runner can call it.
#[derive(Debug)]
pub struct OpenAiBackend {
    cfg: OpenAiConfig,
    /// `.../v1`
    root: String,
    model: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

enum Failure {
    /// Worth retrying.
    Transient(String),
    /// The server refused this one request (400, 413, 422: e.g. a prompt longer than the
    /// context): the item gets an error response, the run goes on.
    Rejected(String),
    /// Nothing will work (authentication, wrong URL, not JSON): the run stops.
    Fatal(String),
}

impl OpenAiBackend {
    /// Builds the client and resolves the model name (one `/v1/models` request when not given).
    pub fn connect(cfg: OpenAiConfig) -> Result<OpenAiBackend, BackendError> {
        let trimmed = cfg.base_url.trim_end_matches('/');
        let root = if trimmed.ends_with("/v1") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/v1")
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| BackendError::Other(format!("building the http client: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BackendError::Other(format!("starting the tokio runtime: {e}")))?;
        let mut b = OpenAiBackend {
            model: cfg.model.clone().unwrap_or_default(),
            cfg,
            root,
            client,
            rt,
        };
        if b.model.is_empty() {
            b.model = b.rt.block_on(b.first_model())?;
        }
        Ok(b)
    }

    /// The served model name requests carry.
    pub fn model(&self) -> &str {
        &self.model
    }

    async fn first_model(&self) -> Result<String, BackendError> {
        let url = format!("{}/models", self.root);
        let v = self.with_retries(&url, || self.get_json(&url)).await?;
        v.get("data")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| BackendError::Response {
                url,
                field: "data[0].id".into(),
                message: "no model listed; pass the model name explicitly".into(),
            })
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cfg.api_key {
            Some(k) if !k.is_empty() => rb.bearer_auth(k),
            _ => rb,
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, Failure> {
        let resp = self
            .auth(self.client.get(url))
            .send()
            .await
            .map_err(classify_send)?;
        read_json(resp).await
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, Failure> {
        let resp = self
            .auth(self.client.post(url))
            .json(body)
            .send()
            .await
            .map_err(classify_send)?;
        read_json(resp).await
    }

    async fn with_retries<'a, F, Fut>(&'a self, url: &str, f: F) -> Result<Value, BackendError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>> + 'a,
    {
        let mut delay = self.cfg.backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(Failure::Transient(_)) if attempt <= self.cfg.max_retries => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(Failure::Rejected(message)) => {
                    return Err(BackendError::Rejected {
                        url: url.to_string(),
                        message,
                    });
                }
                Err(Failure::Transient(message)) | Err(Failure::Fatal(message)) => {
                    return Err(BackendError::Request {
                        url: url.to_string(),
                        attempts: attempt,
                        message,
                    });
                }
            }
        }
    }

    fn body(&self, prompt: &Prompt, p: &GenParams, sample: usize) -> Value {
        let mut body = json!({
            "model": self.model,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": prompt.seed.wrapping_add(sample as u64),
            "n": 1,
        });
        let m = body.as_object_mut().expect("object literal");
        if p.top_k > 0 {
            m.insert("top_k".into(), json!(p.top_k));
        }
        if !p.stop.is_empty() {
            m.insert("stop".into(), json!(p.stop));
        }
        match self.cfg.api {
            Api::Completions => {
                m.insert("prompt".into(), json!(prompt.text));
            }
            Api::Chat => {
                let msgs: Vec<Value> = prompt
                    .messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                m.insert("messages".into(), Value::Array(msgs));
            }
        }
        body
    }

    async fn one(&self, body: Value) -> Result<Generation, BackendError> {
        let url = match self.cfg.api {
            Api::Completions => format!("{}/completions", self.root),
            Api::Chat => format!("{}/chat/completions", self.root),
        };
        match self
            .with_retries(&url, || self.post_json(&url, &body))
            .await
        {
            Ok(v) => parse_choice(&url, self.cfg.api, &v),
            Err(e @ BackendError::Rejected { .. }) => Ok(Generation {
                text: String::new(),
                tokens: 0,
                finish: FinishReason::Stop,
                error: Some(e.to_string()),
            }),
            Err(e) => Err(e),
        }
    }
}

fn classify_send(e: reqwest::Error) -> Failure {
    if e.is_connect() || e.is_timeout() || e.is_request() {
        Failure::Transient(e.to_string())
    } else {
        Failure::Fatal(e.to_string())
    }
}

async fn read_json(resp: reqwest::Response) -> Result<Value, Failure> {
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| Failure::Transient(format!("reading the body: {e}")))?;
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Failure::Transient(format!(
            "http {status}: {}",
            snippet(&text)
        )));
    }
    if matches!(status.as_u16(), 400 | 413 | 422) {
        return Err(Failure::Rejected(format!(
            "http {status}: {}",
            snippet(&text)
        )));
    }
    if !status.is_success() {
        return Err(Failure::Fatal(format!("http {status}: {}", snippet(&text))));
    }
    serde_json::from_str(&text)
        .map_err(|e| Failure::Fatal(format!("invalid json ({e}): {}", snippet(&text))))
}

fn snippet(s: &str) -> String {
    let mut end = s.len().min(300);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Reads `choices[0]` and `usage.completion_tokens` of one response.
pub fn parse_choice(url: &str, api: Api, v: &Value) -> Result<Generation, BackendError> {
    let bad = |field: &str, message: &str| BackendError::Response {
        url: url.to_string(),
        field: field.to_string(),
        message: message.to_string(),
    };
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| bad("choices[0]", "missing"))?;
    let text = match api {
        Api::Completions => choice.get("text").and_then(Value::as_str),
        Api::Chat => choice
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str),
    };
    let text = match (api, text) {
        (_, Some(t)) => t.to_string(),
        // A chat message whose content is null (e.g. only reasoning) is an empty response.
        (Api::Chat, None) if choice.get("message").is_some() => String::new(),
        (Api::Completions, None) => return Err(bad("choices[0].text", "missing")),
        (Api::Chat, None) => return Err(bad("choices[0].message.content", "missing")),
    };
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    };
    let tokens = v
        .get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("usage.completion_tokens", "missing"))? as usize;
    Ok(Generation {
        text,
        tokens,
        finish,
        error: None,
    })
}

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        let api = match self.cfg.api {
            Api::Completions => "completions",
            Api::Chat => "chat",
        };
        format!("openai:{} ({api}, model {})", self.root, self.model)
    }

    fn preferred_batch(&self) -> usize {
        (self.cfg.concurrency * 2).max(1)
    }

    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        let sem = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        self.rt.block_on(async {
            let mut futs = Vec::with_capacity(prompts.len() * n);
            for p in prompts {
                for j in 0..n {
                    let body = self.body(p, params, j);
                    let sem = sem.clone();
                    futs.push(async move {
                        let _permit = sem.acquire().await.expect("semaphore never closed");
                        self.one(body).await
                    });
                }
            }
            // Joined in order, polled together: the semaphore bounds what is in flight.
            let results = join_all(futs).await;
            let mut out = Vec::with_capacity(prompts.len());
            let mut it = results.into_iter();
            for _ in prompts {
                let mut row = Vec::with_capacity(n);
                for _ in 0..n {
                    row.push(it.next().expect("one result per request")?);
                }
                out.push(row);
            }
            Ok(out)
        })
    }
}

/// Polls all futures concurrently and returns their outputs in order (a tiny `join_all`, to avoid
/// a `futures` dependency for one function).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(outs.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().map(|o| o.expect("ready")).collect()
}
