//! Writing a model out: a Hugging Face folder (`hf`: safetensors, config, tokenizer files) or a
//! GGUF file that llama.cpp also loads (`gguf`: llama.cpp's names and q/k layout, quantized
//! matrices, `gguf_tokenizer`: the tokenizer's metadata copied or built).
//!
//! Both take a model loaded in train mode, whose dense f32 weights are what a future LoRA
//! merge would modify before export.

mod gguf;
mod gguf_tokenizer;
mod hf;

pub use gguf::{GgufBuilder, GgufQuant, GgufReport, export_gguf, gguf_general_name};
pub use gguf_tokenizer::GgufTokenizer;
pub use hf::{export_hf_folder, save_hf_folder, save_tokenizer_files, write_folder_atomic};
