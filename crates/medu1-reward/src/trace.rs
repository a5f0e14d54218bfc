//! Per-sample traces: every intermediate value of a score, for debugging reward hacking, for the
//! `--explain` output and for the golden comparison. This path computes all components (EMS, BLEU,
//! Rouge-L, normalised strings) even when the reward does not need them.

use serde::{Deserialize, Serialize};

use crate::bleu::compute_bleu;
use crate::ems::ems_normalized;
use crate::error::RewardError;
use crate::extract::{Header, extract_solution};
use crate::format::{FormatVerdict, check_format};
use crate::length::{length_delta, length_delta_raw};
use crate::normalize::Normalized;
use crate::profile::{Profile, RewardMetric};
use crate::rouge::rouge_l_normalized;
use crate::score::{Input, Parts, Scorer, score_parts_extracted};

/// The reference helpers' values for one sample (the golden file's `components`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Components {
    pub header: Option<Header>,
    /// Length of the processed string in Unicode scalar values.
    pub processed_str_len: usize,
    pub extracted_answer: Option<String>,
    /// The `check_think` format rule on the processed string.
    pub format_valid: bool,
    pub length_delta_raw: Option<f64>,
    pub length_delta: f64,
    /// The fields below are `None` when no non-empty answer was extracted.
    pub ems: Option<f64>,
    /// 0–1 scale, as the reference (whatever the profile's fixes).
    pub bleu: Option<f64>,
    pub bleu_ngram: Option<[f64; 3]>,
    /// `0.5*ems + 0.5*bleu` as the reference (0–1 BLEU).
    pub merge: Option<f64>,
    pub rouge_l: Option<f64>,
    /// Why `rouge_l` is `None` although there is an answer: an input over the word cap (see
    /// [`crate::rouge::DEFAULT_MAX_ROUGE_WORDS`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rouge_l_skipped: Option<String>,
    pub normalized_answer: Option<String>,
    pub normalized_ground_truth: Option<String>,
}

/// A full explanation of one training score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub scorer: Scorer,
    pub profile: String,
    /// Which format check failed, if any (the `check_think` rule, reported even when the profile
    /// does not use it).
    pub format: FormatVerdict,
    pub components: Components,
    /// The free-text metric value the profile compares or scales (with fixes applied), for free
    /// text with an answer.
    pub metric_value: Option<f64>,
    /// The terms and the total, or the error the reference would raise.
    pub parts: Option<Parts>,
    pub error: Option<RewardError>,
}

/// All components of one sample.
pub fn components(input: &Input<'_>) -> Components {
    components_with(input, None)
}

/// [`components`] with Rouge-L computed only when both the normalised answer and ground truth
/// have at most `max_rouge_words` words (`None`: no cap); see [`Components::rouge_l_skipped`].
pub fn components_with(input: &Input<'_>, max_rouge_words: Option<usize>) -> Components {
    let ext = extract_solution(input.solution_str);
    components_of(
        input,
        ext.header,
        ext.processed,
        ext.answer,
        max_rouge_words,
    )
}

fn components_of(
    input: &Input<'_>,
    header: Option<Header>,
    processed: &str,
    answer: Option<&str>,
    max_rouge_words: Option<usize>,
) -> Components {
    let mut c = Components {
        header,
        processed_str_len: processed.chars().count(),
        extracted_answer: answer.map(str::to_owned),
        format_valid: check_format(processed).is_valid(),
        length_delta_raw: length_delta_raw(input.num_tokens, input.valid_response_length),
        length_delta: length_delta(input.num_tokens, input.valid_response_length),
        ems: None,
        bleu: None,
        bleu_ngram: None,
        merge: None,
        rouge_l: None,
        rouge_l_skipped: None,
        normalized_answer: None,
        normalized_ground_truth: None,
    };
    if let Some(a) = answer.filter(|a| !a.is_empty()) {
        let mut na = Normalized::new();
        let mut ng = Normalized::new();
        na.normalize(a);
        ng.normalize(input.ground_truth);
        let ems = ems_normalized(&na, &ng);
        let b = compute_bleu(input.ground_truth, a);
        c.ems = Some(ems);
        c.bleu = Some(b.mean);
        c.bleu_ngram = Some(b.ngram);
        c.merge = Some(0.5 * ems + 0.5 * b.mean);
        // Rouge-L's LCS is quadratic (120k words a side: 9 s); EMS and BLEU are linear.
        match max_rouge_words {
            Some(cap) if na.len().max(ng.len()) > cap => {
                c.rouge_l_skipped = Some(format!(
                    "rouge-l not computed: answer has {} words and ground truth {} after \
                     normalisation, over the cap of {cap} words each",
                    na.len(),
                    ng.len()
                ));
            }
            _ => c.rouge_l = Some(rouge_l_normalized(&na, &ng)),
        }
        c.normalized_answer = Some(na.joined());
        c.normalized_ground_truth = Some(ng.joined());
    }
    c
}

/// Scores one sample with `scorer` and explains the result.
pub fn trace(scorer: Scorer, profile: &Profile, input: &Input<'_>) -> Trace {
    trace_with(scorer, profile, input, None)
}

/// [`trace`] with the Rouge-L word cap of [`components_with`].
pub fn trace_with(
    scorer: Scorer,
    profile: &Profile,
    input: &Input<'_>,
    max_rouge_words: Option<usize>,
) -> Trace {
    let (ext, verdict) = crate::extract::analyse(input.solution_str);
    let components = components_of(
        input,
        ext.header,
        ext.processed,
        ext.answer,
        max_rouge_words,
    );
    let (parts, error) =
        match score_parts_extracted(scorer, profile, input, &ext, verdict.is_valid()) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
    let metric_value = match (components.ems, components.bleu) {
        (Some(ems), Some(bleu))
            if scorer == Scorer::ComputeScore
                && input.data_source == crate::score::FREE_TEXT_SOURCE =>
        {
            let b = bleu * profile.bleu_scale();
            Some(match profile.settings.reward_metric {
                RewardMetric::Ems => ems,
                RewardMetric::Bleu => b,
                RewardMetric::Merge => 0.5 * ems + 0.5 * b,
            })
        }
        _ => None,
    };
    Trace {
        scorer,
        profile: profile.name.clone(),
        format: verdict,
        components,
        metric_value,
        parts,
        error,
    }
}
