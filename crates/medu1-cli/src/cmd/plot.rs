//! `medu1 plot RUN_DIR`: reward, accuracy, length and KL curves of a training run as a PNG.

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A run folder (holding metrics.jsonl).
    run_dir: PathBuf,
    /// Output PNG (default RUN_DIR/curves.png).
    #[arg(short, long)]
    out: Option<PathBuf>,
}

pub fn run(a: PlotArgs) -> anyhow::Result<()> {
    let records = medu1_rl::metrics::read_metrics(&a.run_dir)
        .with_context(|| format!("reading {}/metrics.jsonl", a.run_dir.display()))?;
    anyhow::ensure!(
        !records.is_empty(),
        "{}/metrics.jsonl has no records",
        a.run_dir.display()
    );
    let out = a.out.unwrap_or_else(|| a.run_dir.join("curves.png"));
    let records = medu1_rl::metrics::with_validation_baseline(&a.run_dir, &records)?;
    medu1_eval::curves::training_curves(&out, &records)?;
    println!("{} records plotted to {}", records.len(), out.display());
    Ok(())
}
