//! What `medu1 train` and `medu1 sft` share: the start mode from `--resume` / `--overwrite`.

use medu1_rl::run::Start;

/// `--resume` / `--overwrite` / neither, as the trainer's start mode.
pub fn start_mode(resume: bool, overwrite: bool) -> Start {
    match (resume, overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::New,
    }
}
