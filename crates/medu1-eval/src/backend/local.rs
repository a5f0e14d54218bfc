//! The local backend: the candle runtime of `medu1-model` on this machine's CPU or GPU.
//!
//! Prompts are tokenized from their templated text (the same string `/v1/completions` receives),
//! so a local run and a remote run of the same GGUF see identical inputs.

use medu1_model::{Model, SamplingParams, Tokenizer};

use super::{Backend, GenParams, Generation, Prompt};
use crate::error::BackendError;

/// A loaded model and its tokenizer.
#[derive(Debug)]
pub struct LocalBackend {
    model: Model,
    tokenizer: Tokenizer,
    label: String,
    batch: usize,
}

impl LocalBackend {
    /// Loads a `.gguf` file or a Hugging Face folder for inference on `device`.
    pub fn load(
        path: &std::path::Path,
        device: medu1_model::DeviceSpec,
    ) -> Result<LocalBackend, BackendError> {
        let opts = medu1_model::LoadOptions::infer().on(device);
        let (model, tokenizer) = medu1_model::load(path, opts).map_err(|e| {
            BackendError::Model(format!(
                "loading {}: {}",
                path.display(),
                medu1_core::error::chain(&e)
            ))
        })?;
        Ok(LocalBackend::new(
            model,
            tokenizer,
            format!("local:{}", path.display()),
        ))
    }

    pub fn new(model: Model, tokenizer: Tokenizer, label: String) -> LocalBackend {
        LocalBackend {
            model,
            tokenizer,
            label,
            batch: 8,
        }
    }

    /// Prompts per generation call (one batched prefill and decode).
    pub fn with_batch(mut self, batch: usize) -> LocalBackend {
        self.batch = batch.max(1);
        self
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn preferred_batch(&self) -> usize {
        self.batch
    }

    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        let ids = prompts
            .iter()
            .map(|p| self.tokenizer.encode(&p.text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                BackendError::Model(format!("tokenizing: {}", medu1_core::error::chain(&e)))
            })?;
        let sp = SamplingParams {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            seed: params.seed,
            max_new_tokens: params.max_tokens,
            stop_token_ids: self.tokenizer.default_stop_ids(),
            stop_strings: params.stop.clone(),
        };
        // The runtime seeds each row by its position in the batch. Greedy decoding does not
        // depend on it, so prompts share one batched call; when sampling, each prompt gets its
        // own call with its own seed (its n samples still share one prefill), so results do not
        // depend on which prompts happened to be batched together.
        let groups: Vec<(Vec<Vec<u32>>, u64)> = if params.temperature <= 0.0 {
            vec![(ids, params.seed)]
        } else {
            ids.into_iter()
                .zip(prompts)
                .map(|(i, p)| (vec![i], p.seed))
                .collect()
        };
        let mut out = Vec::with_capacity(prompts.len());
        for (ids, seed) in groups {
            let sp = SamplingParams { seed, ..sp.clone() };
            let g = medu1_model::generate(&self.model, &self.tokenizer, &ids, n, &sp, &mut |_| {})
                .map_err(|e| {
                    BackendError::Model(format!("generating: {}", medu1_core::error::chain(&e)))
                })?;
            out.extend(g.completions.into_iter().map(|row| {
                row.into_iter()
                    .map(|c| Generation {
                        tokens: c.token_ids.len(),
                        text: c.text,
                        finish: c.finish,
                        error: None,
                    })
                    .collect::<Vec<_>>()
            }));
        }
        Ok(out)
    }
}
