//! `medu1 bench ...` (in progress).
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Reward throughput on a golden rewards file (in progress).
    Rewards { file: std::path::PathBuf },
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Rewards { .. } => anyhow::bail!("medu1 bench rewards is not implemented yet"),
    }
}
