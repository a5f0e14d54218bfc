//! A synthetic byte-level BPE tokenizer of any vocabulary size, for random-weight models in real
//! shapes: the 256 byte tokens, then two-byte tokens (every pair, merged from bytes), then
//! three-byte tokens (merged from a pair and a byte) up to `regular` tokens, then Qwen2's
//! special tokens (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`) and `<|extra_N|>` specials
//! up to the vocabulary size. With Qwen2.5's sizes (151,643 regular tokens, 151,936 in all) the
//! special ids are Qwen2.5's. Any text round-trips; it is not a language tokenizer.
//!
//! The pre-tokenizer is Qwen2's (so llama.cpp's `qwen2` name applies) and the chat template is
//! ChatML.

use tokenizers::AddedToken;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};

use crate::error::{ModelError, Result};
use crate::tokenizer::{Tokenizer, pre_tokenizer_for};

/// The special tokens after the regular ones, in id order.
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// ChatML, as Qwen2.5 writes it (without its default system prompt).
pub const CHATML_TEMPLATE: &str = "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/// GPT-2's map from bytes to printable characters (`bytes_to_unicode`).
fn byte_chars() -> [char; 256] {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut out = ['\0'; 256];
    let mut extra = 0;
    for (b, c) in out.iter_mut().enumerate() {
        let b = b as u32;
        *c = if printable(b) {
            char::from_u32(b).expect("latin-1")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("latin extended")
        };
    }
    out
}

/// The tokenizer: `regular` byte-level tokens (at least 256), then the specials, `vocab_size`
/// tokens in all.
pub fn synthetic_tokenizer(vocab_size: usize, regular: usize) -> Result<Tokenizer> {
    if regular < 256 || regular + SPECIALS.len() > vocab_size {
        return Err(ModelError::Config(format!(
            "a synthetic tokenizer needs 256 <= regular tokens ({regular}) and room for {} \
             special tokens in {vocab_size}",
            SPECIALS.len()
        )));
    }
    let chars = byte_chars();
    let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    let mut merges: Vec<(String, String)> = Vec::new();
    'pairs: for a in chars {
        for b in chars {
            if tokens.len() == regular {
                break 'pairs;
            }
            tokens.push(format!("{a}{b}"));
            merges.push((a.to_string(), b.to_string()));
        }
    }
    let pairs = tokens.len();
    'triples: for p in 256..pairs {
        for c in chars {
            if tokens.len() == regular {
                break 'triples;
            }
            let pair = tokens[p].clone();
            tokens.push(format!("{pair}{c}"));
            merges.push((pair, c.to_string()));
        }
    }
    let vocab: Vocab = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let tk = |e: tokenizers::Error| ModelError::Tokenizer(e.to_string());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(tk)?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre_tokenizer_for("qwen2")?));
    inner.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    let specials: Vec<AddedToken> = SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain((0..vocab_size - regular - SPECIALS.len()).map(|i| format!("<|extra_{i}|>")))
        .map(|s| AddedToken::from(s, true))
        .collect();
    inner.add_special_tokens(specials).map_err(tk)?;
    let mut tok = Tokenizer::from_inner(inner);
    tok.eos_id = tok.token_id("<|im_end|>");
    tok.chat_template = Some(CHATML_TEMPLATE.to_string());
    if tok.vocab_size() != vocab_size {
        return Err(ModelError::Tokenizer(format!(
            "synthetic tokenizer has {} tokens, not {vocab_size}",
            tok.vocab_size()
        )));
    }
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_round_trips_and_specials_are_single_tokens() {
        let tok = synthetic_tokenizer(400, 300).unwrap();
        assert_eq!(tok.vocab_size(), 400);
        assert_eq!(tok.token_id("<|endoftext|>"), Some(300));
        assert_eq!(tok.token_id("<|im_start|>"), Some(301));
        assert_eq!(tok.token_id("<|im_end|>"), Some(302));
        assert_eq!(tok.token_id("<|extra_96|>"), Some(399));
        let text = "<|im_start|>user\nHé, 12 µg/L? 🙂<|im_end|>\n";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids[0], 301);
        assert!(ids.iter().all(|&i| i < 400));
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        // Pairs merge: "ab" is one token, the 256 bytes come first.
        assert_eq!(tok.encode("\u{0}\u{0}").unwrap(), [256]);
    }

    #[test]
    fn qwen_sized_vocabulary_has_qwen_special_ids() {
        let tok = synthetic_tokenizer(151_936, 151_643).unwrap();
        assert_eq!(tok.vocab_size(), 151_936);
        assert_eq!(tok.token_id("<|endoftext|>"), Some(151_643));
        assert_eq!(tok.token_id("<|im_start|>"), Some(151_644));
        assert_eq!(tok.token_id("<|im_end|>"), Some(151_645));
        assert_eq!(tok.eos_id, Some(151_645));
        let text = "The patient's creatinine rose to 2.3 mg/dL.";
        assert_eq!(tok.decode(&tok.encode(text).unwrap(), false).unwrap(), text);
    }
}
