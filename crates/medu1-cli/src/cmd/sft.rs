//! `medu1 sft`: supervised warm-up (cold start) on the same runtime and checkpoint format as
//! `medu1 train`; the exported `checkpoints/step-N/hf` folder is a `--model` for train and eval.

use std::path::PathBuf;

use anyhow::Context;
use medu1_rl::{Sft, SftConfig};

use super::trainer::start_mode;
use crate::status::{note, say, steps_bar};

#[derive(Debug, clap::Args)]
pub struct SftArgs {
    /// Configuration file (TOML), e.g. configs/sft-demo.toml.
    #[arg(long)]
    config: PathBuf,
    /// Override a field: `--set steps=50 --set optim.lr=1e-5` (values are TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device (the same as `--set device=...`): cpu, cuda or cuda:N (a GPU needs medu1 built with `--features cuda`).
    #[arg(long)]
    device: Option<String>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run in a run folder that holds another one, removing its checkpoints and
    /// metrics (without this flag such a folder is refused).
    #[arg(long)]
    overwrite: bool,
}

/// Runs the warm-up to its last step (resuming from its own checkpoints when asked).
pub fn run_sft(mut sft: Sft) -> anyhow::Result<Sft> {
    note!(
        "warm-up: {} training examples, {} validation examples ({} left out: no target or too long); run folder {}",
        sft.train.len(),
        sft.val.len(),
        sft.dropped,
        sft.run_dir.display()
    );
    let steps = sft.cfg.steps as u64;
    tracing::info!(
        run_dir = %sft.run_dir.display(),
        steps,
        from_step = sft.step,
        train = sft.train.len(),
        val = sft.val.len(),
        "sft: run start"
    );
    let bar = steps_bar(steps, sft.step);
    while sft.step < steps {
        let rec = sft.step()?;
        bar.inc(1);
        let get = |k: &str| rec.get(k).copied().unwrap_or(f64::NAN);
        let mut line = format!(
            "sft step {:>4}  loss {:.4}  lr {:.2e}  {:.0} tok/s",
            get("step"),
            get("sft/loss"),
            get("sft/lr"),
            get("tokens_per_s/train")
        );
        tracing::debug!(
            step = get("step"),
            loss = get("sft/loss"),
            lr = get("sft/lr"),
            "sft: step done"
        );
        if medu1_rl::checkpoint::checkpoint_dir(&sft.run_dir, sft.step).is_dir() {
            tracing::info!(step = sft.step, "sft: checkpoint saved");
        }
        if rec.contains_key("sft/val_loss") {
            tracing::info!(
                run = "sft",
                step = sft.step,
                val_loss = get("sft/val_loss"),
                "validation done"
            );
            line.push_str(&format!("  val loss {:.4}", get("sft/val_loss")));
        }
        say(&bar, line);
    }
    bar.finish_and_clear();
    tracing::info!(steps = sft.step, run_dir = %sft.run_dir.display(), "sft: run end");
    let png = sft.run_dir.join("curves.png");
    medu1_eval::curves::training_curves(&png, sft.metrics.records())?;
    Ok(sft)
}

pub fn run(a: SftArgs) -> anyhow::Result<()> {
    let cfg: SftConfig = medu1_rl::load_toml(
        Some(&a.config),
        &super::trainer::with_device(&a.set, "device", &a.device),
    )?;
    cfg.validate("")
        .with_context(|| format!("{}", a.config.display()))?;
    let start = start_mode(a.resume, a.overwrite);
    medu1_rl::run::prepare_run_dir(&cfg.out_dir, start)?;
    let path = super::setup::resolve_model(&cfg.model)?;
    let (policy, tokenizer) = medu1_model::load(&path, cfg.load_options())
        .with_context(|| format!("loading {}", path.display()))?;
    let sft = Sft::new(cfg, policy, tokenizer.clone(), start)?;
    let sft = run_sft(sft)?;
    let last = medu1_rl::checkpoint::latest(&sft.run_dir)?;
    println!(
        "warm-up done: {}; model for train/eval: {}",
        sft.run_dir.display(),
        last.map(|p| p.join("hf").display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}
