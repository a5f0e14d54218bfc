//! `medu1 score` (in progress).
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    input: std::path::PathBuf,
}

pub fn run(_a: ScoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("medu1 score is not implemented yet")
}
