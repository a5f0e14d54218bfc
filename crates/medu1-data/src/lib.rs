//! Benchmark loaders, the Med-U1 prompt builder, chat templates, budgets and writers.
//!
//! The data layer of medu1: every benchmark format Med-U1 touches is read into the shared
//! [`medu1_core::Sample`] ([`load`]), turned into the exact prompts and verl records the reference
//! produces ([`prompt`], [`budget`], [`template`]), and written as verl JSONL / parquet or OpenRLHF
//! rows ([`write`]).

pub mod budget;
pub mod error;
pub mod load;
pub mod ovalue;
pub mod prompt;
pub mod pyjson;
pub mod pyliteral;
pub mod pyrandom;
pub mod record;
pub mod source;
pub mod template;
pub mod write;

pub use budget::{BudgetDist, BudgetMode, BudgetRange, BudgetRangeError, BudgetSampler};
pub use load::{Format, LoadError, LoadOptions, Loaded, RowError, load_path};
pub use prompt::{PromptBuilder, Variant};
pub use record::{KeyOrder, VerlRecord};
pub use source::DataSource;
pub use template::{ChatTemplate, Message};
