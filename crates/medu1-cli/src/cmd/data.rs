//! `medu1 data ...` (in progress).
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Counts by source, task kind and split (in progress).
    Inspect { files: Vec<std::path::PathBuf> },
}

pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {
        DataCommand::Inspect { .. } => anyhow::bail!("medu1 data inspect is not implemented yet"),
    }
}
