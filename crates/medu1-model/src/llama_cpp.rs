//! llama.cpp's conventions for a decoder's tensors, in both directions: its tensor names
//! (`blk.3.attn_q.weight`) against Hugging Face ones (`model.layers.3.self_attn.q_proj.weight`),
//! and the permutation of q/k rows its converter applies to `llama` checkpoints (rotated pairs
//! adjacent, [`RopeLayout::Interleaved`]) against Hugging Face's half-split rows.
//!
//! Loading ([`crate::weights`]) maps names one way; saving a Hugging Face folder un-permutes, and
//! the GGUF writer ([`crate::export`]) maps names and permutes the other way.

use candle_core::Tensor;

use crate::config::{ModelConfig, RopeLayout};
use crate::error::Result;

/// The per-layer parts: llama.cpp's name, then Hugging Face's.
const LAYER_PARTS: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The tensors outside the layers: llama.cpp's name, then Hugging Face's.
const GLOBAL: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Maps a llama.cpp tensor name to the Hugging Face name (`None` for tensors the decoder does
/// not use, such as `rope_freqs.weight`).
pub(crate) fn gguf_to_hf_name(name: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL.iter().find(|(g, _)| *g == name) {
        return Some(hf.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (idx, tail) = rest.split_once('.')?;
    let (part, kind) = tail.rsplit_once('.')?;
    let (_, hf) = LAYER_PARTS.iter().find(|(g, _)| *g == part)?;
    Some(format!("model.layers.{idx}.{hf}.{kind}"))
}

/// Maps a Hugging Face tensor name to llama.cpp's (`None` for names outside the decoder).
pub(crate) fn hf_to_gguf_name(name: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL.iter().find(|(_, hf)| *hf == name) {
        return Some(g.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (idx, tail) = rest.split_once('.')?;
    let (part, kind) = tail.rsplit_once('.')?;
    let (g, _) = LAYER_PARTS.iter().find(|(_, hf)| *hf == part)?;
    Some(format!("blk.{idx}.{g}.{kind}"))
}

/// The number of heads whose rows a q or k tensor (weight or bias) holds, by Hugging Face name;
/// `None` for every other tensor.
pub(crate) fn rope_heads(cfg: &ModelConfig, hf_name: &str) -> Option<usize> {
    if hf_name.contains("self_attn.q_proj.") {
        Some(cfg.num_attention_heads)
    } else if hf_name.contains("self_attn.k_proj.") {
        Some(cfg.num_key_value_heads)
    } else {
        None
    }
}

/// Moves q/k rows (weight or bias `hf_name`) from layout `from` to layout `to`; other tensors
/// and equal layouts are returned unchanged.
pub(crate) fn relayout_rows(
    cfg: &ModelConfig,
    hf_name: &str,
    t: &Tensor,
    from: RopeLayout,
    to: RopeLayout,
) -> Result<Tensor> {
    match (rope_heads(cfg, hf_name), from, to) {
        (Some(h), RopeLayout::HalfSplit, RopeLayout::Interleaved) => permute_rows(t, h),
        (Some(h), RopeLayout::Interleaved, RopeLayout::HalfSplit) => unpermute_rows(t, h),
        _ => Ok(t.clone()),
    }
}

/// llama.cpp's `permute` of q/k rows: `[heads, 2, d/2, ...]` → `[heads, d/2, 2, ...]`.
pub(crate) fn permute_rows(t: &Tensor, heads: usize) -> Result<Tensor> {
    swap_row_axes(t, heads, true)
}

/// Inverse of [`permute_rows`]: `[heads, d/2, 2, ...]` → `[heads, 2, d/2, ...]`.
pub(crate) fn unpermute_rows(t: &Tensor, heads: usize) -> Result<Tensor> {
    swap_row_axes(t, heads, false)
}

fn swap_row_axes(t: &Tensor, heads: usize, forward: bool) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let hd = dims[0] / heads;
    let rest: usize = dims[1..].iter().product();
    let split = if forward {
        (heads, 2, hd / 2, rest)
    } else {
        (heads, hd / 2, 2, rest)
    };
    Ok(t.reshape(split)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names_map_both_ways() {
        for g in [
            "token_embd.weight",
            "output_norm.weight",
            "output.weight",
            "blk.0.attn_q.weight",
            "blk.11.attn_k.bias",
            "blk.29.ffn_down.weight",
            "blk.3.attn_norm.weight",
        ] {
            let hf = gguf_to_hf_name(g).unwrap();
            assert_eq!(hf_to_gguf_name(&hf).as_deref(), Some(g), "{hf}");
        }
        assert_eq!(
            hf_to_gguf_name("model.layers.7.self_attn.v_proj.bias").as_deref(),
            Some("blk.7.attn_v.bias")
        );
        assert_eq!(gguf_to_hf_name("rope_freqs.weight"), None);
        assert_eq!(
            hf_to_gguf_name("model.layers.1.self_attn.rotary.inv_freq"),
            None
        );
    }

    #[test]
    fn permute_pairs_dimension_i_with_i_plus_half_and_unpermute_inverts_it() {
        // Two heads of dimension 4, one column: rows [h0: 0 1 2 3, h1: 4 5 6 7].
        let t = Tensor::arange(0f32, 8., &Device::Cpu)
            .unwrap()
            .reshape((8, 1))
            .unwrap();
        let p = permute_rows(&t, 2).unwrap();
        let got: Vec<f32> = p.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, [0., 2., 1., 3., 4., 6., 5., 7.]);
        let back = unpermute_rows(&p, 2).unwrap();
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        // A bias (1-D) permutes the same way.
        let b = Tensor::arange(0f32, 8., &Device::Cpu).unwrap();
        let pb: Vec<f32> = permute_rows(&b, 2).unwrap().to_vec1().unwrap();
        assert_eq!(pb, got);
    }
}
