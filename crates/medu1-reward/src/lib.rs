//! Bit-exact Med-U1 reward functions (arXiv 2506.12307, reference `medical_score.py`), with
//! profiles for deliberate fixes, per-sample traces and a request type shared by the CLI and the
//! reward server.
//!
//! Entry points:
//! * [`train_score`] / [`compute_score`] / [`compute_score_calc`] / [`score_parts`]: the training
//!   reward (§2.7–2.10), dispatched like the reward manager (§3);
//! * [`val_score`] / [`compute_score_val`] / [`compute_score_val_calc`]: validation 0/1 (§2.11);
//! * [`eval_score`] / [`eval_other`]: the offline evaluation path (§2.12);
//! * [`trace()`] / [`components`]: every intermediate value of one sample;
//! * [`ScoreRequest`] / [`score_request`] / [`score_batch`]: the wire format.
//!
//! Python semantics the port reproduces: `str.strip`/`split` whitespace (incl. U+001C–U+001F),
//! `float()` parsing ([`py_float`]), `round(x, 4)` ([`py_round4`]) and Unicode `\d`.

pub mod bleu;
pub mod digits;
pub mod ems;
pub mod error;
pub mod eval;
pub mod extract;
pub mod format;
mod hash;
pub mod length;
pub mod normalize;
pub mod profile;
pub mod pyfloat;
mod quirks;
pub mod request;
pub mod rouge;
pub mod score;
pub mod trace;

pub(crate) use medu1_core::pywhite::{is_py_space as py_space, py_split, py_strip};

pub use bleu::{Bleu, compute_bleu, py_round4};
pub use ems::calculate_exactmatch;
pub use error::{LimitSide, PyException, RewardError};
pub use eval::{EvalMetric, EvalResponse, eval_other, eval_response, eval_score};
pub use extract::{Extracted, Header, extract_solution, extract_solution_eval};
pub use format::{FormatVerdict, Tag, check_format, validate_response_structure};
pub use length::{
    LengthScales, length_delta, length_delta_raw, length_delta_raw_scaled, length_delta_scaled,
    overlong_penalty,
};
pub use normalize::{Normalized, normalize_word};
pub use profile::{Fixes, Profile, RewardMetric, RewardType, Settings, SettingsOverride};
pub use pyfloat::{PyFloatError, py_float};
pub use request::{
    LengthSource, LimitValue, RowError, ScoreOptions, ScoreOutput, ScoreRequest, score_batch,
    score_request,
};
pub use rouge::{DEFAULT_MAX_ROUGE_WORDS, compute_rouge_l};
pub use score::{
    CALC_SOURCE, FREE_TEXT_SOURCE, Input, Limit, MCQ_SOURCES, Parts, Scorer, compute_score,
    compute_score_calc, compute_score_val, compute_score_val_calc, score_parts, train_score,
    val_score,
};
pub use trace::{Components, Trace, components, components_with, trace, trace_with};
