//! The released configurations random models copy: Qwen2.5 0.5B, 1.5B and 3B (`config.json`
//! of the Hugging Face repositories: tied embeddings, q/k/v biases, rope theta 1e6, RMS eps
//! 1e-6, 151,936 embedding rows of which 151,643 are regular tokens).

use crate::config::{Arch, ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};

/// A released model shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomPreset {
    Qwen25_0_5B,
    Qwen25_1_5B,
    Qwen25_3B,
}

impl RandomPreset {
    pub const ALL: [RandomPreset; 3] = [
        RandomPreset::Qwen25_0_5B,
        RandomPreset::Qwen25_1_5B,
        RandomPreset::Qwen25_3B,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RandomPreset::Qwen25_0_5B => "qwen2.5-0.5b",
            RandomPreset::Qwen25_1_5B => "qwen2.5-1.5b",
            RandomPreset::Qwen25_3B => "qwen2.5-3b",
        }
    }

    /// The parameter count the model card states (0.49B, 1.54B, 3.09B).
    pub fn published_parameters(self) -> f64 {
        match self {
            RandomPreset::Qwen25_0_5B => 0.49e9,
            RandomPreset::Qwen25_1_5B => 1.54e9,
            RandomPreset::Qwen25_3B => 3.09e9,
        }
    }

    /// Regular (non-special) tokens of the tokenizer; specials follow.
    pub fn regular_tokens(self) -> usize {
        151_643
    }

    pub fn config(self) -> ModelConfig {
        // (hidden, layers, heads, intermediate); every size has 2 kv heads.
        let (hidden, layers, heads, intermediate) = match self {
            RandomPreset::Qwen25_0_5B => (896, 24, 14, 4864),
            RandomPreset::Qwen25_1_5B => (1536, 28, 12, 8960),
            RandomPreset::Qwen25_3B => (2048, 36, 16, 11008),
        };
        ModelConfig {
            arch: Arch::Qwen2,
            vocab_size: 151_936,
            hidden_size: hidden,
            intermediate_size: intermediate,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: 2,
            head_dim: hidden / heads,
            rope_theta: 1_000_000.0,
            rms_norm_eps: 1e-6,
            max_position_embeddings: 32_768,
            tie_word_embeddings: true,
            attention_bias: true,
            rope_layout: RopeLayout::HalfSplit,
            bos_token_id: None,
            eos_token_id: Some(151_645),
        }
    }
}

impl std::str::FromStr for RandomPreset {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        RandomPreset::ALL
            .into_iter()
            .find(|p| p.as_str() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "unknown random model `{name}`: use qwen2.5-0.5b, qwen2.5-1.5b or qwen2.5-3b"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_model_cards_within_one_percent() {
        for p in RandomPreset::ALL {
            let got = p.config().parameter_count() as f64;
            let want = p.published_parameters();
            assert!(
                (got / want - 1.0).abs() < 0.01,
                "{}: {got} parameters, card says {want}",
                p.as_str()
            );
            assert_eq!(p.as_str().parse::<RandomPreset>().unwrap(), p);
        }
        // The exact count of Qwen2.5-0.5B (transformers' `num_parameters()`).
        assert_eq!(
            RandomPreset::Qwen25_0_5B.config().parameter_count(),
            494_032_768
        );
    }
}
