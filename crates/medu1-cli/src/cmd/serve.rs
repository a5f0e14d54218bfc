//! `medu1 serve`: the reward server for OpenRLHF and verl (see the `medu1-server` crate).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medu1_server::{ServerConfig, TokenCounter};

use super::profile::load_profile;
use crate::status::note;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Reward profile: `med-u1` (reference-exact, default), `corrected`, or a TOML/JSON file.
    #[arg(long, default_value = "med-u1")]
    profile: String,
    /// Tokenizer that counts response tokens for the length term when a request carries no length:
    /// `default` (the embedded model), a GGUF file, a Hugging Face folder or a tokenizer.json.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Data source for `/reward` labels that name none (plain ground-truth labels).
    #[arg(long)]
    default_source: Option<String>,
    /// Reward for a `/reward` sample that the reference scorer raises on; without it such a
    /// request is answered 422 naming the sample.
    #[arg(long, allow_hyphen_values = true)]
    error_reward: Option<f64>,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 64)]
    max_body_mib: usize,
    /// Most samples in one request.
    #[arg(long, default_value_t = 8192)]
    max_batch: usize,
    /// Scoring time limit per request, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Tokens the end-of-sequence marker adds to a counted response length when a request says
    /// its text was decoded without it (`eos: "stripped"`) and was not truncated.
    #[arg(long, default_value_t = 1)]
    eos_tokens: usize,
    /// Time a client has to send a request's headers, in milliseconds (then disconnected).
    #[arg(long, default_value_t = 30_000)]
    header_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds (then answered 408).
    #[arg(long, default_value_t = 60_000)]
    body_timeout_ms: u64,
    /// On SIGTERM/Ctrl-C, how long requests in flight may finish, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    shutdown_timeout_ms: u64,
    /// `/score` computes Rouge-L (quadratic in length) only for answers and ground truths of at
    /// most this many normalised words, else reports `rouge_l_skipped`; 0: no cap.
    #[arg(long, default_value_t = medu1_reward::DEFAULT_MAX_ROUGE_WORDS)]
    max_rouge_words: usize,
    /// Worker threads for HTTP (scoring itself uses all cores for large batches).
    #[arg(long)]
    http_threads: Option<usize>,
}

#[derive(Debug)]
struct ModelTokenCounter(medu1_model::Tokenizer);

impl TokenCounter for ModelTokenCounter {
    fn count(&self, text: &str) -> usize {
        // A text the tokenizer rejects has no sensible length; 0 keeps the sample scorable.
        self.0.encode(text).map_or(0, |ids| ids.len())
    }
}

fn load_tokenizer(arg: &str) -> anyhow::Result<medu1_model::Tokenizer> {
    let path = super::setup::resolve_model(arg)?;
    let tok = if path.is_dir() {
        medu1_model::Tokenizer::from_hf_dir(&path)
    } else if path.extension().is_some_and(|e| e == "gguf") {
        medu1_model::Tokenizer::from_gguf_file(&path)
    } else {
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(medu1_model::Tokenizer::from_inner(inner))
    };
    tok.with_context(|| format!("loading tokenizer from {}", Path::new(&path).display()))
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let profile = load_profile(&a.profile)?;
    let counter: Option<Arc<dyn TokenCounter>> = match &a.tokenizer {
        Some(t) => Some(Arc::new(ModelTokenCounter(load_tokenizer(t)?))),
        None => None,
    };
    let config = ServerConfig {
        profile,
        max_body_bytes: a.max_body_mib << 20,
        max_batch: a.max_batch,
        request_timeout: Duration::from_millis(a.timeout_ms),
        default_source: a.default_source,
        error_reward: a.error_reward,
        eos_tokens: a.eos_tokens,
        header_read_timeout: Duration::from_millis(a.header_timeout_ms),
        body_read_timeout: Duration::from_millis(a.body_timeout_ms),
        shutdown_timeout: Duration::from_millis(a.shutdown_timeout_ms),
        max_rouge_words: (a.max_rouge_words > 0).then_some(a.max_rouge_words),
        ..ServerConfig::default()
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.http_threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build()?;
    let served = rt.block_on(async move {
        let listener = medu1_server::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let local = listener.local_addr()?;
        note!(
            "medu1 reward server on http://{local} (profile {}, tokenizer {})",
            config.profile.name,
            if counter.is_some() { "loaded" } else { "none" }
        );
        let state = medu1_server::state(config, counter);
        medu1_server::serve(listener, state, medu1_server::shutdown_signal()).await?;
        note!("medu1 reward server stopped");
        anyhow::Ok(())
    });
    // Scoring of cancelled requests stops at its next sample; do not wait longer than that for
    // the blocking pool (dropping a runtime would wait for it without bound).
    rt.shutdown_timeout(Duration::from_secs(1));
    served
}
