//! `medu1 export`: write a model as a GGUF file (llama.cpp and medu1 load it; Q8_0, F16, Q4_1 or
//! F32 matrices) or as a Hugging Face folder, from the embedded default model, a GGUF file, a
//! Hugging Face folder or a training checkpoint (its `hf/`); or, with `--random`, a model with
//! random weights in a released shape (Qwen2.5 0.5B / 1.5B / 3B) for speed and memory
//! benchmarks.
//!
//! The source is loaded with dense f32 weights (train mode), then written; with `--adapter` it is
//! loaded as a LoRA base, the PEFT adapter applied and merged into dense weights first.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::status::note;
use anyhow::{Context, bail};
use clap::ValueEnum;
use medu1_model::export::{GgufReport, GgufTokenizer, gguf_general_name};
use medu1_model::random::{RandomPreset, synthetic_tokenizer, write_random_gguf, write_random_hf};
use medu1_model::{GgufQuant, LoadOptions, Model, Tokenizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One GGUF file (llama.cpp's names and layout).
    Gguf,
    /// A Hugging Face folder (f32 safetensors, config, tokenizer files; bf16 for --random).
    Hf,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// `default` (the embedded SmolLM2-135M-Instruct GGUF), a `.gguf` file, a Hugging Face
    /// folder, or a training checkpoint folder (its `hf/` is exported).
    #[arg(long, required_unless_present = "random", conflicts_with = "random")]
    model: Option<String>,
    /// A LoRA adapter in PEFT's layout (a run's `adapter/` folder, or any PEFT folder) to merge
    /// into the model before writing: `W + scale * B A` on the dequantized base.
    #[arg(long, conflicts_with = "random")]
    adapter: Option<PathBuf>,
    /// Random weights (N(0, 0.02), norms 1) in a released shape instead of a model:
    /// qwen2.5-0.5b, qwen2.5-1.5b or qwen2.5-3b, with a synthetic tokenizer of the real
    /// vocabulary size. For benchmarks only: the text is noise.
    #[arg(long)]
    random: Option<String>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0, requires = "random")]
    seed: u64,
    #[arg(long, value_enum)]
    format: Format,
    /// Matrix format of a GGUF file: q8_0 (default), f16, q4_1 or f32. Norms and biases stay
    /// f32; a matrix whose rows are not whole blocks is written f16.
    #[arg(long)]
    quant: Option<String>,
    /// `general.name` of a GGUF file (default: the source's, else its file name).
    #[arg(long)]
    name: Option<String>,
    /// llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`) when exporting a Hugging Face
    /// tokenizer it is not recognised from (smollm, qwen2, llama-bpe and gpt2 are).
    #[arg(long)]
    tokenizer_pre: Option<String>,
    /// The GGUF file or the folder to write (replaced atomically if it exists).
    #[arg(short = 'o', long)]
    output: PathBuf,
}

/// Where the weights come from.
enum Source {
    Gguf(PathBuf),
    HfDir(PathBuf),
}

impl Source {
    fn resolve(arg: &str) -> anyhow::Result<Source> {
        let path = super::setup::resolve_model(arg)?;
        if !path.is_dir() {
            return Ok(Source::Gguf(path));
        }
        // A training checkpoint holds its Hugging Face export in hf/.
        let hf = path.join("hf");
        if hf.join("config.json").is_file() {
            return Ok(Source::HfDir(hf));
        }
        if path.join("config.json").is_file() {
            return Ok(Source::HfDir(path));
        }
        bail!(
            "{} has neither config.json nor hf/config.json: not a Hugging Face folder or a checkpoint",
            path.display()
        )
    }

    fn path(&self) -> &Path {
        match self {
            Source::Gguf(p) | Source::HfDir(p) => p,
        }
    }

    /// `general.name` for the output: the GGUF's own, else the file or folder name.
    fn name(&self) -> anyhow::Result<String> {
        if let Source::Gguf(p) = self
            && let Some(n) = gguf_general_name(p)?
        {
            return Ok(n);
        }
        let p = self.path();
        let p = if p.ends_with("hf") {
            p.parent().unwrap_or(p)
        } else {
            p
        };
        Ok(p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "medu1".into()))
    }

    /// The source's weights (dense f32) and tokenizer.
    fn load(&self) -> anyhow::Result<(Model, Tokenizer)> {
        medu1_model::load(self.path(), LoadOptions::train())
            .with_context(|| format!("loading {}", self.path().display()))
    }

    /// The source as a LoRA base with the adapter of `dir`, merged into dense f32 weights.
    fn load_merged(&self, dir: &Path) -> anyhow::Result<(Model, Tokenizer)> {
        let (mut base, tok) = medu1_model::load(
            self.path(),
            LoadOptions::lora(medu1_model::LoraConfig::default()),
        )
        .with_context(|| format!("loading {}", self.path().display()))?;
        base.load_adapter(dir)
            .with_context(|| format!("loading the adapter {}", dir.display()))?;
        let merged = base
            .merge(LoadOptions::train())
            .context("merging the adapter into the model")?;
        Ok((merged, tok))
    }

    fn gguf_tokenizer(
        &self,
        vocab_size: usize,
        pre: Option<&str>,
    ) -> anyhow::Result<GgufTokenizer> {
        match self {
            Source::Gguf(p) => GgufTokenizer::from_gguf_file(p),
            Source::HfDir(d) => GgufTokenizer::from_hf_dir(d, vocab_size, pre),
        }
        .with_context(|| format!("reading the tokenizer of {}", self.path().display()))
    }
}

fn gguf_quant(a: &ExportArgs) -> anyhow::Result<GgufQuant> {
    match (&a.quant, a.format) {
        (Some(_), Format::Hf) => bail!("--quant applies to --format gguf only"),
        (Some(q), Format::Gguf) => Ok(q.parse().context("--quant")?),
        (None, _) => Ok(GgufQuant::Q8_0),
    }
}

fn report_gguf(a: &ExportArgs, quant: GgufQuant, r: &GgufReport, secs: f64) {
    if !r.f16_fallbacks.is_empty() {
        note!(
            "{} matrices written as f16: their rows are not whole {} blocks ({})",
            r.f16_fallbacks.len(),
            quant.as_str(),
            r.f16_fallbacks.join(", ")
        );
    }
    println!(
        "wrote {} ({} tensors, {:.1} MB, {}) in {secs:.1}s",
        a.output.display(),
        r.tensors,
        r.bytes as f64 / 1e6,
        quant.as_str()
    );
}

fn run_random(a: &ExportArgs, preset: &str, quant: GgufQuant) -> anyhow::Result<()> {
    let preset: RandomPreset = preset.parse().context("--random")?;
    let cfg = preset.config();
    let t0 = Instant::now();
    let tok = synthetic_tokenizer(cfg.vocab_size, preset.regular_tokens())?;
    note!(
        "random {} (seed {}): {} parameters",
        preset.as_str(),
        a.seed,
        cfg.parameter_count()
    );
    match a.format {
        Format::Gguf => {
            let name = a
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-random-seed{}", preset.as_str(), a.seed));
            let r = write_random_gguf(&cfg, &tok, a.seed, quant, &name, &a.output)
                .with_context(|| format!("writing {}", a.output.display()))?;
            report_gguf(a, quant, &r, t0.elapsed().as_secs_f64());
        }
        Format::Hf => {
            write_random_hf(&cfg, &tok, a.seed, &a.output)
                .with_context(|| format!("writing {}", a.output.display()))?;
            println!(
                "wrote {} in {:.1}s",
                a.output.display(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let quant = gguf_quant(&a)?;
    if let Some(preset) = &a.random {
        return run_random(&a, preset, quant);
    }
    let source = Source::resolve(a.model.as_deref().unwrap_or("default"))?;
    let t0 = Instant::now();
    let (model, tok) = match &a.adapter {
        Some(dir) => source.load_merged(dir)?,
        None => source.load()?,
    };
    match a.format {
        Format::Gguf => {
            let meta =
                source.gguf_tokenizer(model.config().vocab_size, a.tokenizer_pre.as_deref())?;
            let name = match &a.name {
                Some(n) => n.clone(),
                None => source.name()?,
            };
            let r = medu1_model::export_gguf(&model, &meta, quant, &name, &a.output)
                .with_context(|| format!("writing {}", a.output.display()))?;
            report_gguf(&a, quant, &r, t0.elapsed().as_secs_f64());
        }
        Format::Hf => {
            medu1_model::export_hf_folder(&model, &tok, &a.output)
                .with_context(|| format!("writing {}", a.output.display()))?;
            println!(
                "wrote {} in {:.1}s",
                a.output.display(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
