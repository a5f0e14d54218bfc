//! `medu1`: one binary that prepares Med-U1 data, scores responses, trains, evaluates and serves
//! rewards. This crate is the only one that prints, reads the environment or uses `anyhow`; every
//! subcommand lives in its own module under `cmd/`.
#![allow(clippy::print_stdout)]
// A binary has no public API: `pub` here marks what the command modules share, and writing
// pub(crate) on every such item would say nothing more.
#![allow(unreachable_pub)]

mod cmd;
mod status;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "medu1",
    version,
    about = "Train and evaluate medical reasoning LLMs with RL on verifiable rewards (Med-U1)."
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `medu1_rl=debug`.
    #[arg(long, global = true, env = "MEDU1_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch and verify the embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF) into the cache.
    Setup(cmd::setup::SetupArgs),
    /// Read benchmarks, build Med-U1 prompts, write verl-compatible files.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Score responses with the Med-U1 reward (JSONL in, JSONL out).
    Score(cmd::score::ScoreArgs),
    /// Train with GRPO (Med-U1) from a TOML configuration.
    Train(cmd::train::TrainArgs),
    /// Supervised warm-up (cold start) before GRPO.
    Sft(cmd::sft::SftArgs),
    /// Draw a training run's reward, accuracy, length and KL curves.
    Plot(cmd::plot::PlotArgs),
    /// Serve Med-U1 rewards over HTTP for OpenRLHF and verl.
    Serve(cmd::serve::ServeArgs),
    /// Benchmarks of medu1's own components.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// MedCalc-Bench calculators: verify them against the benchmark, generate training rows.
    #[command(subcommand)]
    Calc(cmd::calc::CalcCommand),
    /// Evaluate a model (local or an OpenAI-compatible server) on benchmark suites.
    Eval(cmd::eval::EvalArgs),
    /// Sample completions from a model (the embedded SmolLM2 GGUF by default).
    Generate(cmd::generate::GenerateArgs),
    /// Write a model as GGUF (llama.cpp) or a Hugging Face folder; or a random model in a
    /// released shape, for benchmarks.
    Export(cmd::export::ExportArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a redirected log stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Setup(a) => cmd::setup::run(a),
        Command::Data(c) => cmd::data::run(c),
        Command::Score(a) => cmd::score::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Sft(a) => cmd::sft::run(a),
        Command::Calc(c) => cmd::calc::run(c),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Export(a) => cmd::export::run(a),
    }
}
