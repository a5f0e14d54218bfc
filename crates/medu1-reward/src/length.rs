//! The length term (§2.9): how far the response length L is from the prompt's token budget N.
//!
//! Exact mode (N ≥ 0) rewards being near N; maximum mode (N < −1) rewards staying under |N|, up to
//! +1 at 500 or more tokens under (§2.14 #11). N = −1 means no budget and no term.

/// The value the reference reports before its final clamp: `get_delta_score_max` (already clamped
/// to [−1, 1] inside) for N < −1, `1 − |L − N| / 1500` for N ≥ 0, `None` for N = −1.
pub fn length_delta_raw(num_tokens: i64, valid_response_length: f64) -> Option<f64> {
    let l = valid_response_length;
    if num_tokens == -1 {
        None
    } else if num_tokens < 0 {
        let d = l - num_tokens.unsigned_abs() as f64;
        // (beta * d) * -1 with beta = 1/500; negation is exactly `* -1` in IEEE arithmetic and
        // gives -0.0 at d == 0 like the reference.
        let sc = -((1.0 / 500.0) * d);
        Some(py_max(-1.0, py_min(1.0, sc)))
    } else {
        let z = (l - num_tokens as f64).abs() / 1500.0;
        Some(1.0 - z)
    }
}

/// The term added to the answer reward: the raw value clamped to [−1, 1], 0 without a budget.
pub fn length_delta(num_tokens: i64, valid_response_length: f64) -> f64 {
    match length_delta_raw(num_tokens, valid_response_length) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
