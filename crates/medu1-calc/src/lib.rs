//! MedCalc-Bench calculators, re-implemented so calculation tasks have exact, verifiable answers.
//!
//! RL on calculation needs ground truth that can be recomputed, and MedCalc-Bench's 10,053-row
//! training split is not available to us. Implementing the calculators the way the benchmark does
//! them (its formulas, unit conversions, rounding and ±5 % limits, as documented in its one-shot
//! explanations) gives two things: an unlimited, license-free source of training rows
//! ([`synth`]), and a check of the benchmark's own labels ([`verify`]).
//!
//! A [`Calculator`] is a static description (id and name exactly as in the CSV, typed inputs keyed
//! by the `Relevant Entities` names, output type) plus a pure compute function over [`Inputs`], a
//! view of the entities as JSON (`{"creatinine": [1.2, "mg/dL"], "sex": "Male", ...}`).

pub mod dates;
pub mod error;
mod formulas;
pub mod inputs;
mod pregnancy;
pub mod registry;
mod scores;
pub mod spec;
pub mod synth;
pub mod units;
pub mod verify;

pub use dates::Date;
pub use error::CalcError;
pub use inputs::{Inputs, parse_entities};
pub use registry::{all, by_id, find};
pub use spec::{
    CalcAnswer, Calculator, InputKind, InputSpec, OutputType, format_decimal, limits, round_to,
};
pub use synth::{Difficulty, synth};
pub use units::Analyte;
pub use verify::{Disagreement, VerifyReport, verify_csv, verify_rows};
