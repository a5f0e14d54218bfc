//! `medu1 calc verify` and `medu1 calc synth`: check the MedCalc-Bench calculators against the
//! benchmark's labels, and generate verifiable calculation rows for RL.
//!
//! (The issue asked for `medu1 data verify-calc` / `medu1 data synth-calc`; these live under
//! `calc` and can be aliased there.)

use crate::status::note;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medu1_calc::{self as calc, Calculator, Difficulty, VerifyReport};
use medu1_core::Budget;
use medu1_core::atomic::AtomicFile;
use medu1_data::PromptBuilder;
use medu1_data::prompt::Variant;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum CalcCommand {
    /// Recompute MedCalc-Bench labels from each row's Relevant Entities; print agreement per
    /// calculator and every disagreement with its reason.
    Verify(VerifyArgs),
    /// Generate synthetic calculation rows (exact answers, benchmark-style limits).
    Synth(SynthArgs),
    /// List the implemented calculators (id, slug, output type, name).
    List,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// MedCalc-Bench `test_data_v1.0.csv`.
    #[arg(long)]
    pub medcalc_csv: PathBuf,
    /// Also write the full report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthDifficulty {
    Easy,
    Mixed,
    Hard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthFormat {
    /// verl rows (Med-U1 prompt, Qwen2.5 template), as `medu1 data` writes them.
    Verl,
    /// `medu1_core::Sample` JSON lines.
    Samples,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of rows.
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Comma-separated calculator ids, slugs or names (default: all implemented).
    #[arg(long, value_delimiter = ',')]
    pub calculators: Vec<String>,
    #[arg(long, value_enum, default_value_t = SynthDifficulty::Mixed)]
    pub difficulty: SynthDifficulty,
    #[arg(long, value_enum, default_value_t = SynthFormat::Verl)]
    pub format: SynthFormat,
    /// Output JSONL.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}

pub fn run(c: CalcCommand) -> anyhow::Result<()> {
    match c {
        CalcCommand::Verify(a) => verify(a),
        CalcCommand::Synth(a) => synth(a),
        CalcCommand::List => {
            for c in calc::all() {
                println!(
                    "{:>3}  {:<30} {:<8} {}",
                    c.id,
                    c.slug,
                    c.output.csv_name(),
                    c.name
                );
            }
            Ok(())
        }
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let report = calc::verify_csv(&a.medcalc_csv)?;
    print!("{}", render_report(&report));
    if let Some(path) = a.json {
        let mut f =
            AtomicFile::create(&path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(&mut f, &report)?;
        f.write_all(b"\n")?;
        f.commit()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The agreement table, then each disagreement.
pub fn render_report(r: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>3}  {:<62} {:>5} {:>5} {:>6}",
        "id", "calculator", "rows", "agree", "%"
    );
    for a in &r.per_calculator {
        let _ = writeln!(
            s,
            "{:>3}  {:<62} {:>5} {:>5} {:>6.1}",
            a.id,
            a.name,
            a.rows,
            a.agree,
            a.percent()
        );
    }
    let total = r.total_rows();
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * r.total_agree() as f64 / total as f64
    };
    let _ = writeln!(
        s,
        "     {:<62} {:>5} {:>5} {:>6.1}",
        "all implemented",
        total,
        r.total_agree(),
        pct
    );
    let _ = writeln!(
        s,
        "({} rows of calculators not implemented were skipped)",
        r.skipped_rows
    );
    if !r.disagreements.is_empty() {
        let _ = writeln!(s, "\ndisagreements ({}):", r.disagreements.len());
    }
    for d in &r.disagreements {
        let _ = writeln!(
            s,
            "row {:>4}  [{}] {}: expected {}, computed {}, limits [{}, {}]: {}",
            d.row_number,
            d.calculator_id,
            d.calculator,
            d.expected,
            d.computed.as_deref().unwrap_or("-"),
            d.lower,
            d.upper,
            d.reason
        );
    }
    s
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    let calcs: Vec<&Calculator> = a
        .calculators
        .iter()
        .map(|k| calc::find(k))
        .collect::<Result<_, _>>()?;
    let difficulty = match a.difficulty {
        SynthDifficulty::Easy => Difficulty::Easy,
        SynthDifficulty::Mixed => Difficulty::Mixed,
        SynthDifficulty::Hard => Difficulty::Hard,
    };
    let samples = calc::synth(a.n, a.seed, &calcs, difficulty)?;
    match a.format {
        SynthFormat::Verl => {
            let builder = PromptBuilder::new(Variant::ReleasedParquet);
            let records = samples
                .iter()
                .enumerate()
                .map(|(i, s)| builder.record(s, Budget::None, i as i64))
                .collect::<Result<Vec<_>, _>>()?;
            medu1_data::write::write_verl_jsonl(&a.output, &records, builder.variant.key_order())?;
        }
        SynthFormat::Samples => {
            let mut f = AtomicFile::create(&a.output)
                .with_context(|| format!("creating {}", a.output.display()))?;
            for s in &samples {
                serde_json::to_writer(&mut f, s)?;
                f.write_all(b"\n")?;
            }
            f.commit()
                .with_context(|| format!("writing {}", a.output.display()))?;
        }
    }
    note!("wrote {} rows to {}", samples.len(), a.output.display());
    Ok(())
}
