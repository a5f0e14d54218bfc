//! Outcome advantages from group rewards (spec §4.2).
//!
//! GRPO normalises each response's reward by its group (the n samples of one prompt); Dr.GRPO drops
//! the division by the standard deviation (it biases towards easy/hard groups); RLOO uses the
//! leave-one-out mean. All work in f32 like the reference, whose rewards live in a float32 tensor.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AdvantageEstimator {
    /// `(s - mean) / (std_unbiased + eps)`; a group of one has mean 0, std 1 (reference behaviour).
    #[default]
    Grpo,
    /// `s - mean` (Liu et al., "Understanding R1-Zero-like training").
    DrGrpo,
    /// `s - mean of the other members` (REINFORCE leave-one-out); a group of one gets 0.
    Rloo,
}

/// Advantages for `rewards`, where `groups[i]` is the group id of response i (e.g. its prompt
/// index). Groups need not be contiguous.
pub fn advantages(
    estimator: AdvantageEstimator,
    rewards: &[f32],
    groups: &[usize],
    epsilon: f32,
) -> Vec<f32> {
    assert_eq!(rewards.len(), groups.len(), "one group id per reward");
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    for (i, &g) in groups.iter().enumerate() {
        members[g].push(i);
    }
    let mut out = vec![0f32; rewards.len()];
    for idx in members.iter().filter(|m| !m.is_empty()) {
        let n = idx.len();
        // torch.mean/std over a float32 tensor: sum in f32 like the reference.
        let sum: f32 = idx.iter().map(|&i| rewards[i]).sum();
        let mean = sum / n as f32;
        match estimator {
            AdvantageEstimator::Grpo => {
                let (mean, std) = if n == 1 {
                    (0.0, 1.0)
                } else {
                    let var: f32 = idx
                        .iter()
                        .map(|&i| (rewards[i] - mean) * (rewards[i] - mean))
                        .sum::<f32>()
                        / (n as f32 - 1.0);
                    (mean, var.sqrt())
                };
                for &i in idx {
                    out[i] = (rewards[i] - mean) / (std + epsilon);
                }
            }
            AdvantageEstimator::DrGrpo => {
                for &i in idx {
                    out[i] = if n == 1 { 0.0 } else { rewards[i] - mean };
                }
            }
            AdvantageEstimator::Rloo => {
                for &i in idx {
                    out[i] = if n == 1 {
                        0.0
                    } else {
                        rewards[i] - (sum - rewards[i]) / (n as f32 - 1.0)
                    };
                }
            }
        }
    }
    out
}

/// Share of groups whose rewards are all equal: they carry no GRPO signal.
pub fn zero_variance_share(rewards: &[f32], groups: &[usize]) -> f64 {
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut first: Vec<Option<f32>> = vec![None; n_groups];
    let mut varied = vec![false; n_groups];
    let mut present = vec![false; n_groups];
    for (&r, &g) in rewards.iter().zip(groups) {
        present[g] = true;
        match first[g] {
            None => first[g] = Some(r),
            Some(f) if f != r => varied[g] = true,
            _ => {}
        }
    }
    let total = present.iter().filter(|p| **p).count();
    if total == 0 {
        return 0.0;
    }
    let flat = present
        .iter()
        .zip(&varied)
        .filter(|(p, v)| **p && !**v)
        .count();
    flat as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpo_matches_hand_computation() {
        // group 0: [2, 0, 0, -2]: mean 0, unbiased std sqrt(8/3) = 1.632993
        let r = [2.0, 0.0, 0.0, -2.0, 1.0, 1.0];
        let g = [0, 0, 0, 0, 1, 1];
        let a = advantages(AdvantageEstimator::Grpo, &r, &g, 1e-6);
        let std = (8.0f32 / 3.0).sqrt();
        assert!((a[0] - 2.0 / (std + 1e-6)).abs() < 1e-6);
        assert_eq!(a[1], 0.0);
        assert!((a[3] + 2.0 / (std + 1e-6)).abs() < 1e-6);
        // equal rewards: no signal
        assert_eq!(&a[4..], &[0.0, 0.0]);
    }

    #[test]
    fn grpo_single_member_group_uses_mean_zero_std_one() {
        let a = advantages(AdvantageEstimator::Grpo, &[3.0], &[0], 1e-6);
        assert!((a[0] - 3.0 / (1.0 + 1e-6)).abs() < 1e-6);
    }

    #[test]
    fn dr_grpo_and_rloo() {
        let r = [3.0, 1.0, 2.0];
        let g = [0, 0, 0];
        assert_eq!(
            advantages(AdvantageEstimator::DrGrpo, &r, &g, 1e-6),
            vec![1.0, -1.0, 0.0]
        );
        // rloo: 3 - (1+2)/2 = 1.5; 1 - 2.5 = -1.5; 2 - 2 = 0
        assert_eq!(
            advantages(AdvantageEstimator::Rloo, &r, &g, 1e-6),
            vec![1.5, -1.5, 0.0]
        );
    }

    #[test]
    fn interleaved_groups() {
        let r = [1.0, 5.0, 3.0, 5.0];
        let g = [0, 1, 0, 1];
        let a = advantages(AdvantageEstimator::DrGrpo, &r, &g, 1e-6);
        assert_eq!(a, vec![-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(zero_variance_share(&r, &g), 0.5);
    }
}
