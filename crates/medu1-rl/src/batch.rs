//! Packing prompt + response sequences into padded tensors, and the per-token log-probabilities
//! (and entropies) of the response tokens under a model.
//!
//! Layout: when every sequence of a micro-batch continues the same prompt (the n samples of a
//! GRPO group), the prompt is run once and shared ([`Inputs::Shared`]): a group costs one prompt
//! pass instead of n. Otherwise prompts are left-padded to a common width P, responses
//! right-padded to a common width R, so every response starts at column P and the logits that
//! predict it are columns P-1..P+R-1.
//! Only those columns go through the LM head and the softmax: with prompts several times longer
//! than responses, the vocabulary-wide logits would otherwise dominate a step's memory.

use candle_core::{DType, Device, Result, Tensor};
use medu1_model::Model;

/// One sequence of a training batch.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub advantage: f32,
}

/// The model inputs of a micro-batch.
#[derive(Debug)]
pub enum Inputs {
    /// Distinct prompts: `ids` `[b, P+R]` with prompts left-padded to `prompt_width` P,
    /// `attention` `[b, P+R]` 1 for real tokens.
    Padded {
        ids: Tensor,
        attention: Tensor,
        prompt_width: usize,
    },
    /// One prompt `[1, P]` continued by every row of `responses` `[b, R]`.
    Shared { prompt: Tensor, responses: Tensor },
}

#[derive(Debug)]
pub struct Packed {
    pub inputs: Inputs,
    /// `[b, R]` response token ids (0 in padding).
    pub response_ids: Tensor,
    /// `[b, R]` 1 for real response tokens.
    pub mask: Tensor,
    /// `[b, R]` the sequence's advantage at every response position.
    pub advantages: Tensor,
    pub response_width: usize,
}

pub fn pack(seqs: &[&Sequence], dev: &Device) -> Result<Packed> {
    let b = seqs.len();
    let p = seqs
        .iter()
        .map(|s| s.prompt.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let r = seqs
        .iter()
        .map(|s| s.response.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let shared = seqs
        .first()
        .is_some_and(|f| !f.prompt.is_empty() && seqs.iter().all(|s| s.prompt == f.prompt));
    let w = p + r;
    let mut ids = vec![0u32; b * w];
    let mut att = vec![0f32; b * w];
    let mut rids = vec![0u32; b * r];
    let mut mask = vec![0f32; b * r];
    let mut adv = vec![0f32; b * r];
    for (i, s) in seqs.iter().enumerate() {
        let off = p - s.prompt.len();
        for (j, &t) in s.prompt.iter().enumerate() {
            ids[i * w + off + j] = t;
            att[i * w + off + j] = 1.0;
        }
        for (j, &t) in s.response.iter().enumerate() {
            ids[i * w + p + j] = t;
            att[i * w + p + j] = 1.0;
            rids[i * r + j] = t;
            mask[i * r + j] = 1.0;
            adv[i * r + j] = s.advantage;
        }
    }
    let response_ids = Tensor::from_vec(rids, (b, r), dev)?;
    let inputs = if shared {
        Inputs::Shared {
            prompt: Tensor::from_vec(seqs[0].prompt.clone(), (1, p), dev)?,
            responses: response_ids.clone(),
        }
    } else {
        Inputs::Padded {
            ids: Tensor::from_vec(ids, (b, w), dev)?,
            attention: Tensor::from_vec(att, (b, w), dev)?,
            prompt_width: p,
        }
    };
    Ok(Packed {
        inputs,
        response_ids,
        mask: Tensor::from_vec(mask, (b, r), dev)?,
        advantages: Tensor::from_vec(adv, (b, r), dev)?,
        response_width: r,
    })
}

/// Log-probabilities `[b, R]` of the response tokens at `temperature`, and optionally the
/// per-token entropy `[b, R]` of the same distributions. Differentiable for a train-mode model.
pub fn response_logprobs(
    model: &Model,
    batch: &Packed,
    temperature: f64,
    with_entropy: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let logits = match &batch.inputs {
        Inputs::Padded {
            ids,
            attention,
            prompt_width,
        } => model.forward_span(ids, Some(attention), prompt_width - 1, batch.response_width),
        Inputs::Shared { prompt, responses } => model.forward_shared_prefix(prompt, responses),
    }
    .map_err(|e| candle_core::Error::Msg(medu1_core::error::chain(&e)))?;
    // One node that keeps only the logits (see `medu1_model::logprobs`).
    let lp = medu1_model::gather_log_softmax(&logits, &batch.response_ids, temperature)?;
    // Also one node over the same logits: the composite form kept four more vocabulary-wide
    // tensors per micro-batch (`medu1_model::softmax_entropy`).
    let ent = if with_entropy {
        Some(medu1_model::softmax_entropy(&logits, temperature)?)
    } else {
        None
    };
    Ok((lp, ent))
}

/// Sum of `x * mask` and the mask's sum, as f64 scalars (metrics).
pub fn masked_sum(x: &Tensor, mask: &Tensor) -> Result<(f64, f64)> {
    let s = (x * mask)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    let n = mask.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok((s, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_aligns_responses_at_the_prompt_width() {
        let a = Sequence {
            prompt: vec![5, 6, 7],
            response: vec![8],
            advantage: 1.5,
        };
        let b = Sequence {
            prompt: vec![9],
            response: vec![10, 11, 12],
            advantage: -0.5,
        };
        let p = pack(&[&a, &b], &Device::Cpu).unwrap();
        let Inputs::Padded {
            ids,
            attention,
            prompt_width,
        } = &p.inputs
        else {
            panic!("distinct prompts must be padded")
        };
        assert_eq!((*prompt_width, p.response_width), (3, 3));
        assert_eq!(
            ids.to_vec2::<u32>().unwrap(),
            vec![vec![5, 6, 7, 8, 0, 0], vec![0, 0, 9, 10, 11, 12]]
        );
        assert_eq!(
            attention.to_vec2::<f32>().unwrap(),
            vec![vec![1., 1., 1., 1., 0., 0.], vec![0., 0., 1., 1., 1., 1.]]
        );
        assert_eq!(
            p.mask.to_vec2::<f32>().unwrap(),
            vec![vec![1., 0., 0.], vec![1., 1., 1.]]
        );
        assert_eq!(
            p.advantages.to_vec2::<f32>().unwrap()[1],
            vec![-0.5, -0.5, -0.5]
        );
        assert_eq!(
            p.advantages.to_vec2::<f32>().unwrap()[0],
            vec![1.5, 0.0, 0.0]
        );
    }

    #[test]
    fn samples_of_one_prompt_share_it() {
        let a = Sequence {
            prompt: vec![5, 6, 7],
            response: vec![8],
            advantage: 1.0,
        };
        let b = Sequence {
            response: vec![10, 11],
            ..a.clone()
        };
        let p = pack(&[&a, &b], &Device::Cpu).unwrap();
        let Inputs::Shared { prompt, responses } = &p.inputs else {
            panic!("one prompt must be shared")
        };
        assert_eq!(prompt.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7]]);
        assert_eq!(
            responses.to_vec2::<u32>().unwrap(),
            vec![vec![8, 0], vec![10, 11]]
        );
        assert_eq!(
            p.mask.to_vec2::<f32>().unwrap(),
            vec![vec![1., 0.], vec![1., 1.]]
        );
    }
}
