//! `medu1 bench rewards`: reward throughput on a golden rewards file.
//!
//! The reward runs on the driver in the reference trainer, once per sampled response, so its
//! speed bounds how cheaply rollouts can be scored. This benchmark scores every case with the
//! released training settings through the reward manager's dispatch (`compute_score_calc` for
//! MedCalc-Bench, `compute_score` otherwise); cases the reference raises on count as scored. Only
//! scoring is timed, not JSON parsing.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use medu1_reward::{Input, Limit, Profile, train_score};
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Reward throughput (cases/s) on a golden rewards file, single-threaded and on T threads.
    Rewards {
        /// A `rewards.jsonl` in the golden schema (e.g. shared/golden/rewards.jsonl).
        file: PathBuf,
        /// How many passes over the file each timing makes.
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        /// Threads of the parallel run (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::Rewards {
            file,
            repeat,
            threads,
        } => rewards(&file, repeat.max(1), threads),
    }
}

#[derive(Debug, Deserialize)]
struct GoldenCase {
    category: String,
    input: GoldenInput,
}

#[derive(Debug, Deserialize)]
struct GoldenInput {
    data_source: String,
    solution_str: String,
    ground_truth: String,
    lower_limit: Option<String>,
    upper_limit: Option<String>,
    num_tokens: i64,
    valid_response_length: f64,
}

const CATEGORIES: [&str; 4] = ["mcq", "freeform", "calc", "synthetic"];

fn category(c: &str) -> usize {
    match c {
        "mcq" => 0,
        "freeform" => 1,
        "calc" => 2,
        _ => 3,
    }
}

fn lim(l: &Option<String>) -> Limit<'_> {
    l.as_deref().map_or(Limit::Missing, Limit::Str)
}

fn input(c: &GoldenCase) -> Input<'_> {
    Input {
        data_source: &c.input.data_source,
        solution_str: &c.input.solution_str,
        ground_truth: &c.input.ground_truth,
        lower_limit: lim(&c.input.lower_limit),
        upper_limit: lim(&c.input.upper_limit),
        num_tokens: c.input.num_tokens,
        valid_response_length: c.input.valid_response_length,
    }
}

/// Timings of `repeat` passes over a set of inputs on the current thread.
struct Passes {
    total: Duration,
    best: Duration,
}

/// Scores `inputs` `repeat` times on the current thread, timing each pass. The best pass is the
/// figure least disturbed by other processes on a shared machine; the mean is reported too.
fn time_serial(profile: &Profile, inputs: &[Input<'_>], repeat: usize) -> Passes {
    let mut total = Duration::ZERO;
    let mut best = Duration::MAX;
    let mut sum = 0.0;
    for _ in 0..repeat {
        let t = Instant::now();
        for i in inputs {
            sum += train_score(profile, black_box(i)).unwrap_or(0.0);
        }
        let d = t.elapsed();
        total += d;
        best = best.min(d);
    }
    black_box(sum);
    Passes { total, best }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-12)
}

fn rewards(file: &PathBuf, repeat: usize, threads: Option<usize>) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let cases: Vec<GoldenCase> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", file.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    if cases.is_empty() {
        bail!("{} has no cases", file.display());
    }
    let inputs: Vec<Input<'_>> = cases.iter().map(input).collect();
    let profile = Profile::med_u1();
    let errors = inputs
        .iter()
        .filter(|i| train_score(&profile, i).is_err())
        .count();

    // Warm-up pass (page faults, lazy tables).
    time_serial(&profile, &inputs, 1);

    println!(
        "reward bench: {} cases ({} raise in the reference and count as scored), repeat {repeat}, \
         settings Merge/discrete/45/100/check_think",
        inputs.len(),
        errors
    );
    println!(
        "{:<10} {:>7} {:>22} {:>22}",
        "category", "cases", "cases/s 1 thr (best)", "cases/s 1 thr (mean)"
    );
    let mut by_cat: [Vec<Input<'_>>; 4] = Default::default();
    for (c, i) in cases.iter().zip(&inputs) {
        by_cat[category(&c.category)].push(*i);
    }
    for (name, set) in CATEGORIES.iter().zip(&by_cat) {
        if set.is_empty() {
            continue;
        }
        let p = time_serial(&profile, set, repeat);
        println!(
            "{name:<10} {:>7} {:>22.0} {:>22.0}",
            set.len(),
            rate(set.len(), p.best),
            rate(set.len() * repeat, p.total)
        );
    }
    let p1 = time_serial(&profile, &inputs, repeat);
    let d1 = p1.total;
    let total = inputs.len() * repeat;
    println!(
        "{:<10} {:>7} {:>22.0} {:>22.0}",
        "overall",
        inputs.len(),
        rate(inputs.len(), p1.best),
        rate(total, d1)
    );

    let t = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(t.max(1))
        .build()?;
    let (dt, _) = pool.install(|| {
        let start = Instant::now();
        let sum: f64 = (0..repeat)
            .into_par_iter()
            .flat_map_iter(|_| inputs.iter())
            .map(|i| train_score(&profile, black_box(i)).unwrap_or(0.0))
            .sum();
        (start.elapsed(), black_box(sum))
    });
    println!(
        "overall on {t} thread(s): {:.0} cases/s (mean over all passes; {:.2}x the single-threaded mean)",
        rate(total, dt),
        d1.as_secs_f64() / dt.as_secs_f64().max(1e-12)
    );
    Ok(())
}
