//! The evaluation harness of medu1: run a model over benchmark suites, score every response with
//! the Med-U1 reward rules (or a benchmark's official rule), and write the table users judge a
//! model by.
//!
//! Generation is behind one trait, [`Backend`], so that the same runner drives the local candle
//! runtime ([`backend::local`]) and any OpenAI-compatible server ([`backend::openai`]: vLLM,
//! SGLang, llama.cpp) for models far larger than a CPU can run. medu1 always does the prompting,
//! scoring and reporting itself, so numbers are comparable across backends.
//!
//! Modules: [`suite`] resolves benchmark files, [`runner`] drives generation and writes the
//! per-item log ([`record`]: one [`ItemRecord`] a line) that [`resume`] reads back, [`score`] applies the grading rules, [`metrics`]
//! aggregates (Wilson intervals, mean@n, pass@k, maj@n, budget adherence), [`report`] writes
//! markdown / JSON / CSV and [`plot`] the bar chart; [`sweep`] evaluates every item at several
//! length budgets and reports length adherence and accuracy per budget ([`sweep_stats`] computes
//! the numbers, [`sweep_plot`] draws them); [`curves`] draws training curves.

pub mod backend;
pub mod curves;
pub mod error;
pub mod metrics;
pub mod plot;
pub mod record;
pub mod report;
pub mod resume;
pub mod runner;
pub mod score;
pub mod suite;
pub mod sweep;
pub mod sweep_plot;
pub mod sweep_stats;

pub use backend::{Backend, GenParams, Generation, Prompt};
pub use error::{BackendError, EvalError};
pub use metrics::{BenchmarkStats, wilson_interval};
pub use record::{ItemRecord, ResponseRecord, RunMeta};
pub use runner::{Benchmark, RunConfig, run};
pub use score::Rule;
pub use suite::Suite;
