//! The training and validation scorers (§2.7, §2.8, §2.11) and the reward manager's dispatch (§3).
//!
//! Every scorer goes through [`score_parts`], which returns the format term, the answer term and
//! the length term separately; the total is `F + (A + Δ)`, the reference's operation order, so
//! results are bit-identical. Free-text metrics are computed only as far as the decision needs:
//! in discrete mode BLEU is skipped whenever EMS alone already decides `Merge > threshold` (BLEU is
//! bounded to [0, 1]), and never computed for the EMS metric. The trace path
//! ([`crate::trace`]) still computes every component.

use serde::{Deserialize, Serialize};

use crate::bleu::compute_bleu;
use crate::ems::ems_normalized;
use crate::error::{LimitSide, RewardError};
use crate::extract::{Extracted, analyse, extract_solution};
use crate::length::length_delta_scaled;
use crate::normalize::Normalized;
use crate::profile::{Profile, RewardMetric, RewardType};
use crate::pyfloat::py_float;

/// `medical-o1-reasoning-SFT`: HuaTuo free text.
pub const FREE_TEXT_SOURCE: &str = "medical-o1-reasoning-SFT";
/// `MedCalc-Bench`: calculation, scored by `compute_score_calc`.
pub const CALC_SOURCE: &str = "MedCalc-Bench";
/// Multiple-choice sources of the training scorers.
pub const MCQ_SOURCES: [&str; 3] = ["EHRNoteQA", "MedIQ", "MedXpertQA"];

/// A calculation limit as the data stores it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Limit<'a> {
    /// `None` in the reference: `float(None)` raises `TypeError`.
    #[default]
    Missing,
    /// A string, parsed with Python `float()` semantics.
    Str(&'a str),
    /// Already a number.
    Num(f64),
}

impl Limit<'_> {
    /// `float(limit)`.
    pub fn to_f64(self, side: LimitSide) -> Result<f64, RewardError> {
        match self {
            Limit::Missing => Err(RewardError::MissingLimit { side }),
            Limit::Num(v) => Ok(v),
            Limit::Str(s) => py_float(s).map_err(|_| RewardError::InvalidLimit {
                side,
                value: s.to_owned(),
            }),
        }
    }
}

/// The arguments every scorer receives, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input<'a> {
    pub data_source: &'a str,
    /// Prompt + response as decoded by the trainer (special tokens kept).
    pub solution_str: &'a str,
    pub ground_truth: &'a str,
    pub lower_limit: Limit<'a>,
    pub upper_limit: Limit<'a>,
    /// Budget N (−1: none).
    pub num_tokens: i64,
    /// Response length L in tokens, EOS included (§3).
    pub valid_response_length: f64,
}

/// Which training scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scorer {
    ComputeScore,
    ComputeScoreCalc,
}

impl Scorer {
    /// The reward manager's `_select_rm_score_fn`.
    pub fn for_source(data_source: &str) -> Scorer {
        if data_source == CALC_SOURCE {
            Scorer::ComputeScoreCalc
        } else {
            Scorer::ComputeScore
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scorer::ComputeScore => "compute_score",
            Scorer::ComputeScoreCalc => "compute_score_calc",
        }
    }
}

/// The reward split into its terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    /// Whether the format rule (or, without `check_think`, answer presence) held.
    pub format_valid: bool,
    /// F: `+format_reward` or `−|format_reward|`.
    pub format: f64,
    /// A before the length term: ±1, a continuous metric, 0, or −2 when no answer was extracted.
    pub answer: f64,
    /// Δ: the length term added to A (0 when there is no answer or no budget).
    pub length: f64,
    /// `F + (A + Δ)`.
    pub total: f64,
}

/// `F` of the reference: `format_reward` if the format holds, else `-abs(format_reward)`.
#[inline]
fn format_term(profile: &Profile, ext: &Extracted<'_>, think_valid: bool) -> (bool, f64) {
    let ok = if profile.settings.check_think {
        think_valid
    } else {
        ext.answer.is_some()
    };
    let fr = profile.settings.format_reward;
    (ok, if ok { fr } else { -fr.abs() })
}

/// MCQ wrapper removal of [`crate::Fixes::mcq_strip_wrappers`]: `(B)`, `B)`, `B.`, `B:` -> `B`.
fn strip_mcq_wrapper(a: &str) -> &str {
    let b = a.as_bytes();
    let letter = |c: u8| (b'A'..=b'N').contains(&c);
    match b {
        [b'(', c, b')'] if letter(*c) => &a[1..2],
        [c, b')' | b'.' | b':'] if letter(*c) => &a[..1],
        _ => a,
    }
}

/// The MCQ answer reward of `compute_score`: ±1 for an A–N ground truth, else 0 (quirk 10).
#[inline]
fn mcq_answer(profile: &Profile, answer: &str, gt: &str) -> f64 {
    let is_letter = gt.len() == 1 && (b'A'..=b'N').contains(&gt.as_bytes()[0]);
    if !is_letter {
        return 0.0;
    }
    let a = if profile.fixes.mcq_strip_wrappers {
        strip_mcq_wrapper(answer)
    } else {
        answer
    };
    if a == gt { 1.0 } else { -1.0 }
}

/// Thread-local buffers for the normaliser, so the hot path does not allocate per call.
fn with_norm_buffers<R>(f: impl FnOnce(&mut Normalized, &mut Normalized) -> R) -> R {
    thread_local! {
        static BUFS: std::cell::RefCell<(Normalized, Normalized)> = std::cell::RefCell::default();
    }
    BUFS.with(|b| match b.try_borrow_mut() {
        Ok(mut g) => {
            let (x, y) = &mut *g;
            f(x, y)
        }
        // Re-entrant use cannot happen today; stay correct anyway.
        Err(_) => f(&mut Normalized::new(), &mut Normalized::new()),
    })
}

/// `Merge > threshold` with BLEU computed only when EMS alone cannot decide.
fn merge_exceeds(profile: &Profile, ems: f64, answer: &str, gt: &str, threshold: f64) -> bool {
    let s = profile.bleu_scale();
    let lo = 0.5 * ems + 0.5 * (0.0 * s);
    let hi = 0.5 * ems + 0.5 * (1.0 * s);
    if lo > threshold {
        return true;
    }
    if hi <= threshold {
        return false;
    }
    let bleu = compute_bleu(gt, answer).mean * s;
    0.5 * ems + 0.5 * bleu > threshold
}

/// The smallest candidate word count `t` at which `fails(t)` holds for every larger count too,
/// given that `fails` is monotone in `t`; `usize::MAX` when even huge counts do not fail.
fn word_limit(min: usize, fails: impl Fn(usize) -> bool) -> usize {
    const HUGE: usize = 1 << 40;
    if !fails(HUGE) {
        return usize::MAX;
    }
    let (mut lo, mut hi) = (min.max(1), HUGE);
    if fails(lo) {
        return lo;
    }
    // fails(hi) && !fails(lo)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fails(mid) { hi = mid } else { lo = mid }
    }
    hi
}

/// EMS for a discrete decision, or `None` when the candidate provably fails.
///
/// EMS = 100·count/total with count ≤ the number of reference words R. Once the candidate has
/// produced `t ≥ R` words, the final metric is at most its value with EMS = 100·R/t (the same
/// float expression, and float arithmetic is monotone), so when that bound cannot exceed the
/// threshold the rest of a long answer is not normalised at all.
fn ems_unless_failing(
    answer: &str,
    gt: &str,
    bound_metric: impl Fn(f64) -> f64,
    threshold: f64,
) -> Option<f64> {
    with_norm_buffers(|c, r| {
        r.normalize(gt);
        let rn = r.len();
        let limit = word_limit(rn, |t| {
            bound_metric(100.0 * (rn as f64 / t as f64)) <= threshold
        });
        if c.normalize_limited(answer, limit) {
            Some(ems_normalized(c, r))
        } else {
            None
        }
    })
}

/// The free-text answer reward of `compute_score`.
fn free_text_answer(profile: &Profile, answer: &str, gt: &str) -> f64 {
    let st = &profile.settings;
    let s = profile.bleu_scale();
    if st.reward_type == RewardType::Discrete {
        let thr = st.bleu_threshold;
        let ems = match st.reward_metric {
            RewardMetric::Ems => ems_unless_failing(answer, gt, |e| e, thr),
            RewardMetric::Merge => {
                ems_unless_failing(answer, gt, |e| 0.5 * e + 0.5 * (1.0 * s), thr)
            }
            // BLEU ≤ 1 (≤ 100 scaled): skip it when it cannot pass.
            RewardMetric::Bleu => {
                let pass = 1.0 * s > thr && compute_bleu(gt, answer).mean * s > thr;
                return if pass { 1.0 } else { -1.0 };
            }
        };
        let pass = match (ems, st.reward_metric) {
            (None, _) => false,
            (Some(e), RewardMetric::Ems) => e > thr,
            (Some(e), _) => merge_exceeds(profile, e, answer, gt, thr),
        };
        return if pass { 1.0 } else { -1.0 };
    }
    let ems = with_norm_buffers(|c, r| {
        c.normalize(answer);
        r.normalize(gt);
        ems_normalized(c, r)
    });
    // Continuous: the exact metric value is needed.
    let metric = match st.reward_metric {
        RewardMetric::Ems => ems,
        RewardMetric::Bleu => compute_bleu(gt, answer).mean * s,
        RewardMetric::Merge => 0.5 * ems + 0.5 * (compute_bleu(gt, answer).mean * s),
    };
    metric / st.scale_factor
}

/// The calculation answer reward: exact string match for a non-numeric ground truth, inclusive
/// limits otherwise. The limits are parsed outside any `try` in the reference (quirk 14), and only
/// when reached: `float(l) <= v <= float(u)` short-circuits before `float(u)`.
fn calc_answer(answer: &str, input: &Input<'_>) -> Result<bool, RewardError> {
    if py_float(input.ground_truth).is_err() {
        return Ok(input.ground_truth == answer);
    }
    let Ok(v) = py_float(answer) else {
        return Ok(false);
    };
    within_limits(v, input)
}

fn within_limits(v: f64, input: &Input<'_>) -> Result<bool, RewardError> {
    let lo = input.lower_limit.to_f64(LimitSide::LowerLimit)?;
    // Python's chained comparison: false (and no parse of `u`) when v < l or either is NaN.
    let above_lower = lo <= v;
    if !above_lower {
        return Ok(false);
    }
    let hi = input.upper_limit.to_f64(LimitSide::UpperLimit)?;
    Ok(v <= hi)
}

/// Runs one training scorer and returns its terms.
pub fn score_parts(
    scorer: Scorer,
    profile: &Profile,
    input: &Input<'_>,
) -> Result<Parts, RewardError> {
    let (ext, verdict) = analyse(input.solution_str);
    score_parts_extracted(scorer, profile, input, &ext, verdict.is_valid())
}

/// [`score_parts`] on an already analysed string (`think_valid`: the `check_think` rule).
pub(crate) fn score_parts_extracted(
    scorer: Scorer,
    profile: &Profile,
    input: &Input<'_>,
    ext: &Extracted<'_>,
    think_valid: bool,
) -> Result<Parts, RewardError> {
    let (format_valid, format) = format_term(profile, ext, think_valid);
    let (answer, length) = match ext.answer {
        Some(a) if !a.is_empty() => {
            let base = match scorer {
                Scorer::ComputeScore => {
                    let ds = input.data_source;
                    if ds == FREE_TEXT_SOURCE {
                        free_text_answer(profile, a, input.ground_truth)
                    } else if MCQ_SOURCES.contains(&ds) {
                        mcq_answer(profile, a, input.ground_truth)
                    } else {
                        return Err(RewardError::UnknownDataSource {
                            data_source: ds.to_owned(),
                        });
                    }
                }
                Scorer::ComputeScoreCalc => {
                    if calc_answer(a, input)? {
                        1.0
                    } else {
                        -1.0
                    }
                }
            };
            (
                base,
                length_delta_scaled(
                    input.num_tokens,
                    input.valid_response_length,
                    profile.settings.length_scales(),
                ),
            )
        }
        _ => (-2.0, 0.0),
    };
    let total = if ext.answer.is_some_and(|a| !a.is_empty()) {
        format + (answer + length)
    } else {
        format + answer
    };
    Ok(Parts {
        format_valid,
        format,
        answer,
        length,
        total,
    })
}

/// `compute_score(...)` with the profile's settings.
pub fn compute_score(profile: &Profile, input: &Input<'_>) -> Result<f64, RewardError> {
    score_parts(Scorer::ComputeScore, profile, input).map(|p| p.total)
}

/// `compute_score_calc(...)` with the profile's settings.
pub fn compute_score_calc(profile: &Profile, input: &Input<'_>) -> Result<f64, RewardError> {
    score_parts(Scorer::ComputeScoreCalc, profile, input).map(|p| p.total)
}

/// The training reward as the reward manager computes it: `compute_score_calc` for
/// `MedCalc-Bench`, `compute_score` otherwise.
pub fn train_score(profile: &Profile, input: &Input<'_>) -> Result<f64, RewardError> {
    score_parts(Scorer::for_source(input.data_source), profile, input).map(|p| p.total)
}

/// `compute_score_val`: 0/1, no format or length term; free text always uses Merge (quirk 13).
pub fn compute_score_val(profile: &Profile, input: &Input<'_>) -> Result<f64, RewardError> {
    let ext = extract_solution(input.solution_str);
    let Some(answer) = ext.answer.filter(|a| !a.is_empty()) else {
        return Ok(0.0);
    };
    let ds = input.data_source;
    let ok = if ds == FREE_TEXT_SOURCE {
        let ems = with_norm_buffers(|c, r| {
            c.normalize(answer);
            r.normalize(input.ground_truth);
            ems_normalized(c, r)
        });
        merge_exceeds(
            profile,
            ems,
            answer,
            input.ground_truth,
            profile.settings.bleu_threshold,
        )
    } else if MCQ_SOURCES.contains(&ds) {
        let a = if profile.fixes.mcq_strip_wrappers {
            strip_mcq_wrapper(answer)
        } else {
            answer
        };
        a == input.ground_truth
    } else {
        return Err(RewardError::UnknownDataSource {
            data_source: ds.to_owned(),
        });
    };
    Ok(if ok { 1.0 } else { 0.0 })
}

/// `compute_score_val_calc`: the calculation rule as 1/0, without the answer guard: a missing
/// answer is compared as the string `"None"` against a non-numeric ground truth.
pub fn compute_score_val_calc(input: &Input<'_>) -> Result<f64, RewardError> {
    let ext = extract_solution(input.solution_str);
    val_calc_answer(ext.answer, input)
}

pub(crate) fn val_calc_answer(answer: Option<&str>, input: &Input<'_>) -> Result<f64, RewardError> {
    let ok = if py_float(input.ground_truth).is_err() {
        input.ground_truth == answer.unwrap_or("None")
    } else {
        match answer.map(py_float) {
            Some(Ok(v)) => within_limits(v, input)?,
            _ => false,
        }
    };
    Ok(if ok { 1.0 } else { 0.0 })
}

/// The validation metric as the validation manager dispatches it.
pub fn val_score(profile: &Profile, input: &Input<'_>) -> Result<f64, RewardError> {
    if input.data_source == CALC_SOURCE {
        compute_score_val_calc(input)
    } else {
        compute_score_val(profile, input)
    }
}
