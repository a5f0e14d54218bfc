//! Batched generation: one left-padded prefill of the prompts, the KV cache copied to `n` rows
//! per prompt (samples share their prompt's prefill), then one decode step per token for all
//! live rows, dropping rows from the batch as they finish.

use std::time::Instant;

use candle_core::Tensor;
use medu1_core::{Completion, FinishReason};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::model::{KvCache, Model};
use crate::sampling::{SamplingParams, sample_token, stream_seed};
use crate::tokenizer::Tokenizer;

/// Timings of one [`generate`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerationStats {
    /// Prompt tokens prefilled (without padding).
    pub prompt_tokens: usize,
    pub prefill_secs: f64,
    /// Tokens generated over all rows.
    pub generated_tokens: usize,
    /// Time from the end of the prefill to the last token.
    pub decode_secs: f64,
}

impl GenerationStats {
    pub fn prefill_tok_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_secs.max(1e-9)
    }
    pub fn decode_tok_per_s(&self) -> f64 {
        self.generated_tokens as f64 / self.decode_secs.max(1e-9)
    }
}

/// The result of [`generate`]: `completions[prompt][sample]`.
#[derive(Debug, Clone)]
pub struct Generation {
    pub completions: Vec<Vec<Completion>>,
    pub stats: GenerationStats,
}

struct Row {
    prompt: usize,
    ids: Vec<u32>,
    logprobs: Vec<f32>,
    rng: ChaCha8Rng,
    finish: Option<FinishReason>,
    /// Byte length of the text at which a stop string matched.
    stop_at: Option<usize>,
}

/// Generates `n` continuations of each tokenized prompt. `on_tokens` is called after every step
/// with the number of tokens just produced (for progress bars). The model must be in inference
/// mode or train mode; inference mode is much faster.
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    n: usize,
    params: &SamplingParams,
    on_tokens: &mut dyn FnMut(usize),
) -> Result<Generation> {
    if prompts.is_empty() || n == 0 {
        return Ok(Generation {
            completions: vec![Vec::new(); prompts.len()],
            stats: GenerationStats::default(),
        });
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input("empty prompt".into()));
    }
    let vocab = model.config().vocab_size as u32;
    if let Some(bad) = prompts.iter().flatten().find(|&&t| t >= vocab) {
        return Err(ModelError::Input(format!(
            "token id {bad} outside the vocabulary ({vocab})"
        )));
    }
    let p_count = prompts.len();
    let max_len = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let cap = max_len + params.max_new_tokens.max(1);

    // Prefill, left-padded so that every row's last prompt token is at the same index.
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(p_count * max_len);
    let mut valid = Vec::with_capacity(p_count);
    for p in prompts {
        let pad = max_len - p.len();
        ids.extend(std::iter::repeat_n(0u32, pad));
        ids.extend_from_slice(p);
        let mut v = vec![false; pad];
        v.extend(std::iter::repeat_n(true, p.len()));
        valid.push(v);
    }
    let dev = model.device();
    let ids = Tensor::from_vec(ids, (p_count, max_len), dev)?;
    let mut cache = KvCache::new(model.config(), p_count, cap, dev)?;
    let logits = model.forward_cached(&ids, &valid, &mut cache, true)?;
    let expand: Vec<u32> = (0..p_count as u32)
        .flat_map(|p| std::iter::repeat_n(p, n))
        .collect();
    let mut logits = if n > 1 {
        cache = cache.select_rows(&expand)?;
        let idx = Tensor::from_slice(&expand, expand.len(), dev)?;
        logits.index_select(&idx, 0)?
    } else {
        logits
    };
    let prefill_secs = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut rows: Vec<Row> = expand
        .iter()
        .enumerate()
        .map(|(i, &p)| Row {
            prompt: p as usize,
            ids: Vec::new(),
            logprobs: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(stream_seed(params.seed, p as usize, i % n)),
            finish: None,
            stop_at: None,
        })
        .collect();
    // live[i] = index into `rows` of cache row i.
    let mut live: Vec<usize> = (0..rows.len()).collect();
    let max_stop = params
        .stop_strings
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0);
    let mut generated = 0usize;
    loop {
        let l = logits.to_vec2::<f32>()?;
        let mut next = Vec::with_capacity(live.len());
        for (ci, &ri) in live.iter().enumerate() {
            let row = &mut rows[ri];
            let (tok, lp) = sample_token(&l[ci], params, &mut row.rng);
            row.ids.push(tok);
            row.logprobs.push(lp);
            next.push(tok);
            if params.stop_token_ids.contains(&tok) {
                row.finish = Some(FinishReason::Stop);
            } else if max_stop > 0 {
                let text = tokenizer.decode(&row.ids, true)?;
                // Only the tail can hold a new match: the earlier text was checked before.
                let mut from = text.len().saturating_sub(max_stop + 16);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let hit = params
                    .stop_strings
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text[from..].find(s.as_str()).map(|i| from + i))
                    .min();
                if let Some(at) = hit {
                    row.finish = Some(FinishReason::Stop);
                    row.stop_at = Some(at);
                }
            }
            if row.finish.is_none() && row.ids.len() >= params.max_new_tokens {
                row.finish = Some(FinishReason::Length);
            }
        }
        generated += live.len();
        on_tokens(live.len());
        let keep: Vec<u32> = (0..live.len() as u32)
            .filter(|&ci| rows[live[ci as usize]].finish.is_none())
            .collect();
        if keep.is_empty() {
            break;
        }
        let mut next_ids: Vec<u32> = keep.iter().map(|&ci| next[ci as usize]).collect();
        if keep.len() < live.len() {
            cache = cache.select_rows(&keep)?;
            live = keep.iter().map(|&ci| live[ci as usize]).collect();
        }
        let b = live.len();
        let input = Tensor::from_vec(std::mem::take(&mut next_ids), (b, 1), dev)?;
        let valid = vec![vec![true]; b];
        logits = model.forward_cached(&input, &valid, &mut cache, true)?;
    }
    let decode_secs = t1.elapsed().as_secs_f64();

    let mut completions: Vec<Vec<Completion>> = vec![Vec::with_capacity(n); p_count];
    for row in rows {
        let mut text = tokenizer.decode(&row.ids, true)?;
        if let Some(at) = row.stop_at {
            text.truncate(at);
        }
        completions[row.prompt].push(Completion {
            text,
            token_ids: row.ids,
            logprobs: row.logprobs,
            finish: row.finish.unwrap_or(FinishReason::Length),
        });
    }
    Ok(Generation {
        completions,
        stats: GenerationStats {
            prompt_tokens: prompts.iter().map(Vec::len).sum(),
            prefill_secs,
            generated_tokens: generated,
            decode_secs,
        },
    })
}
