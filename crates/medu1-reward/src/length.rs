//! The length term (§2.9): how far the response length L is from the prompt's token budget N.
//!
//! Exact mode (N ≥ 0) rewards being near N; maximum mode (N < −1) rewards staying under |N|, up to
//! +1 at 500 or more tokens under (§2.14 #11). N = −1 means no budget and no term.
//!
//! The 1500 and 500 are the reference's scales for its 100–2000-token budgets. A run with small
//! budgets (say 32–256) barely moves a term divided by 1500, so both are settings
//! ([`LengthScales`], `Settings::length_exact_scale` / `length_max_scale`); L1's convention is a
//! scale about the width of the budget range. The defaults reproduce the reference bit for bit:
//! the division and the `(1 / 500) * d` product are computed exactly as it computes them.

/// The divisors of the length term: `1 − |L − N| / exact` and `−(1 / max) · (L − |N|)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthScales {
    pub exact: f64,
    pub max: f64,
}

impl Default for LengthScales {
    /// The reference's 1500 (exact mode) and 500 (maximum mode).
    fn default() -> LengthScales {
        LengthScales {
            exact: 1500.0,
            max: 500.0,
        }
    }
}

/// The value the reference reports before its final clamp: `get_delta_score_max` (already clamped
/// to [−1, 1] inside) for N < −1, `1 − |L − N| / 1500` for N ≥ 0, `None` for N = −1.
pub fn length_delta_raw(num_tokens: i64, valid_response_length: f64) -> Option<f64> {
    length_delta_raw_scaled(num_tokens, valid_response_length, LengthScales::default())
}

/// [`length_delta_raw`] with other scales.
pub fn length_delta_raw_scaled(
    num_tokens: i64,
    valid_response_length: f64,
    scales: LengthScales,
) -> Option<f64> {
    let l = valid_response_length;
    if num_tokens == -1 {
        None
    } else if num_tokens < 0 {
        let d = l - num_tokens.unsigned_abs() as f64;
        // (beta * d) * -1 with beta = 1/500; negation is exactly `* -1` in IEEE arithmetic and
        // gives -0.0 at d == 0 like the reference.
        let sc = -((1.0 / scales.max) * d);
        Some(py_max(-1.0, py_min(1.0, sc)))
    } else {
        let z = (l - num_tokens as f64).abs() / scales.exact;
        Some(1.0 - z)
    }
}

/// The term added to the answer reward: the raw value clamped to [−1, 1], 0 without a budget.
pub fn length_delta(num_tokens: i64, valid_response_length: f64) -> f64 {
    length_delta_scaled(num_tokens, valid_response_length, LengthScales::default())
}

/// [`length_delta`] with other scales.
pub fn length_delta_scaled(
    num_tokens: i64,
    valid_response_length: f64,
    scales: LengthScales,
) -> f64 {
    match length_delta_raw_scaled(num_tokens, valid_response_length, scales) {
        None => 0.0,
        Some(raw) if num_tokens < 0 => py_max(-1.0, raw),
        Some(raw) => py_max(-1.0, py_min(1.0, raw)),
    }
}

/// Python `min(a, b)`: `a` unless `b < a`.
#[inline]
fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// Python `max(a, b)`: `a` unless `b > a`.
#[inline]
fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// DAPO's soft overlong punishment: 0 up to `max_len − buffer` response tokens, then falling
/// linearly to `−factor` at `max_len` (verl's `DAPORewardManager`:
/// `min(−(L − (max_len − buffer)) / buffer · factor, 0)`). A buffer of 0 turns it off.
pub fn overlong_penalty(length: f64, max_len: usize, buffer: usize, factor: f64) -> f64 {
    if buffer == 0 {
        return 0.0;
    }
    let expected = max_len.saturating_sub(buffer) as f64;
    let exceed = length - expected;
    (-exceed / buffer as f64 * factor).min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_scales_match_hand_computed_values() {
        let s = LengthScales {
            exact: 256.0,
            max: 128.0,
        };
        // exact: 1 - |L - N| / 256
        assert_eq!(length_delta_scaled(64, 64.0, s), 1.0);
        assert_eq!(length_delta_scaled(64, 128.0, s), 0.75);
        assert_eq!(length_delta_scaled(128, 0.0, s), 0.5);
        assert_eq!(length_delta_scaled(32, 544.0, s), -1.0); // raw -1.0
        assert_eq!(length_delta_raw_scaled(32, 800.0, s), Some(-2.0));
        assert_eq!(length_delta_scaled(32, 800.0, s), -1.0); // clamped
        // max: -(L - |N|) / 128, clamped to [-1, 1]
        assert_eq!(length_delta_scaled(-128, 64.0, s), 0.5);
        assert_eq!(length_delta_scaled(-128, 0.0, s), 1.0);
        assert_eq!(length_delta_scaled(-64, 96.0, s), -0.25);
        assert_eq!(length_delta_scaled(-64, 1000.0, s), -1.0);
        assert_eq!(length_delta_scaled(-1, 1000.0, s), 0.0);
    }

    #[test]
    fn default_scales_are_the_reference_bit_for_bit() {
        for n in [-2000i64, -700, -2, -1, 0, 5, 100, 1999] {
            for l in [0.0, 1.0, 99.5, 353.0, 1500.0, 2731.0] {
                let a = length_delta(n, l);
                let b = length_delta_scaled(n, l, LengthScales::default());
                assert_eq!(a.to_bits(), b.to_bits(), "n={n} l={l}");
            }
        }
    }

    #[test]
    fn overlong_penalty_is_linear_in_the_buffer() {
        // max 128, buffer 32: free up to 96 tokens, -factor at 128.
        assert_eq!(overlong_penalty(96.0, 128, 32, 1.0), 0.0);
        assert_eq!(overlong_penalty(50.0, 128, 32, 1.0), 0.0);
        assert_eq!(overlong_penalty(112.0, 128, 32, 1.0), -0.5);
        assert_eq!(overlong_penalty(128.0, 128, 32, 1.0), -1.0);
        assert_eq!(overlong_penalty(120.0, 128, 32, 2.0), -1.5);
        assert_eq!(overlong_penalty(128.0, 128, 0, 1.0), 0.0);
    }

    #[test]
    fn no_budget_no_term() {
        assert_eq!(length_delta_raw(-1, 123.0), None);
        assert_eq!(length_delta(-1, 123.0), 0.0);
    }

    #[test]
    fn exact_mode() {
        assert_eq!(length_delta(100, 100.0), 1.0);
        assert_eq!(length_delta(100, 1600.0), 0.0);
        assert_eq!(length_delta(100, 10_000.0), -1.0);
        assert_eq!(length_delta_raw(5000, 353.0), Some(1.0 - 4647.0 / 1500.0));
        assert_eq!(length_delta(0, 750.0), 0.5);
    }

    #[test]
    fn max_mode_rewards_short() {
        assert_eq!(length_delta(-1000, 0.0), 1.0);
        assert_eq!(length_delta(-1000, 1250.0), -0.5);
        assert_eq!(length_delta(-1000, 9000.0), -1.0);
        let z = length_delta(-1000, 1000.0);
        assert!(z == 0.0 && z.is_sign_negative());
    }
}
