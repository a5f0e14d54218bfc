//! Per-example length budgets, drawn the way the reference data script draws them.
//!
//! `scripts/data/deepscaler_dataset.py` draws one budget per example from Python's `random`
//! (spec §1.4). The draw order matters for reproducing its files: no draw for `--do_normal`;
//! `randint(100, 2000)` for the default, even when `--num_tokens K` then overrides it;
//! `random() < 0.5` *before* `randint` for `--use_both`; `randint` *before* `random()` for
//! `--use_both_both`; `int(2 ** uniform(8, 14.5))` for `--use_log`.
//!
//! The 100–2000 range is a [`BudgetRange`] so that runs that can only afford short responses can
//! draw, say, 32–256 (uniformly or log-uniformly). With the default range every draw consumes
//! exactly the reference's random numbers; `--use_log`'s own range is the reference's and is not
//! affected.

use crate::pyrandom::PyRandom;
use medu1_core::Budget;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a budget is drawn within its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetDist {
    /// `randint(min, max)`, the reference's draw.
    #[default]
    Uniform,
    /// `int(2 ** uniform(log2 min, log2 (max + 1)))`: as many budgets in 32–64 as in 128–256,
    /// which suits ranges spanning several doublings.
    LogUniform,
}

/// The range budgets are drawn from (inclusive), and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetRange {
    pub min: i64,
    pub max: i64,
    pub dist: BudgetDist,
}

impl Default for BudgetRange {
    /// The reference's `randint(100, 2000)`.
    fn default() -> BudgetRange {
        BudgetRange {
            min: 100,
            max: 2000,
            dist: BudgetDist::Uniform,
        }
    }
}

/// A budget range that cannot be drawn from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "invalid budget range {min}..={max}: need 2 <= min <= max (a maximum budget of 1 would be encoded as -1, which means no budget)"
)]
pub struct BudgetRangeError {
    pub min: i64,
    pub max: i64,
}

impl BudgetRange {
    /// Checks that every draw is a valid budget in every mode.
    pub fn validate(&self) -> Result<(), BudgetRangeError> {
        if self.min < 2 || self.min > self.max {
            return Err(BudgetRangeError {
                min: self.min,
                max: self.max,
            });
        }
        Ok(())
    }

    /// One draw (the reference's `randint(100, 2000)` with the default range).
    pub fn draw(&self, rng: &mut PyRandom) -> i64 {
        match self.dist {
            BudgetDist::Uniform => rng.randint(self.min, self.max),
            BudgetDist::LogUniform => {
                let lo = (self.min as f64).log2();
                let hi = ((self.max + 1) as f64).log2();
                (2f64.powf(rng.uniform(lo, hi)) as i64).clamp(self.min, self.max)
            }
        }
    }
}

/// How each example's budget is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMode {
    /// `--do_normal`: N = −1 (no budget sentence), no draw.
    None,
    /// Default: N = `randint(100, 2000)`, "Think for N tokens.".
    Exact,
    /// medu1 extension: N = −`randint(100, 2000)`, "Think for maximum |N| tokens." (the script only
    /// reaches maximum mode through `--use_both_both` or a negative `--num_tokens`).
    Maximum,
    /// `--use_log`: N = `int(2 ** uniform(8, 14.5))`, exact mode.
    Log,
    /// `--use_both`: with p = 0.5 `randint(100, 2000)`, else −1.
    Both,
    /// `--use_both_both`: `n = randint(100, 2000)`, negated (maximum mode) with p = 0.5.
    BothBoth,
    /// `--num_tokens K`: K for every example (the default draw still happens and is discarded).
    Fixed(i64),
}

impl BudgetMode {
    /// Draws one example's budget, consuming exactly the reference's random numbers.
    pub fn draw(self, rng: &mut PyRandom) -> Budget {
        self.draw_in(&BudgetRange::default(), rng)
    }

    /// [`BudgetMode::draw`] with `range` in place of the reference's 100–2000.
    pub fn draw_in(self, range: &BudgetRange, rng: &mut PyRandom) -> Budget {
        let n = match self {
            BudgetMode::None => -1,
            BudgetMode::Exact => range.draw(rng),
            BudgetMode::Maximum => -range.draw(rng),
            BudgetMode::Log => 2f64.powf(rng.uniform(8.0, 14.5)) as i64,
            BudgetMode::Both => {
                if rng.random() < 0.5 {
                    range.draw(rng)
                } else {
                    -1
                }
            }
            BudgetMode::BothBoth => {
                let n = range.draw(rng);
                if rng.random() < 0.5 { -n } else { n }
            }
            BudgetMode::Fixed(k) => {
                let _ = range.draw(rng);
                k
            }
        };
        Budget::from_num_tokens(n)
    }
}

/// A seeded stream of budgets: one [`BudgetSampler::next`] per example, in file order.
#[derive(Debug, Clone)]
pub struct BudgetSampler {
    mode: BudgetMode,
    range: BudgetRange,
    rng: PyRandom,
}

impl BudgetSampler {
    /// `random.seed(seed)` then draws in `mode`.
    pub fn new(mode: BudgetMode, seed: i64) -> BudgetSampler {
        BudgetSampler::with_range(mode, seed, BudgetRange::default())
    }

    /// `random.seed(seed)` then draws in `mode` within `range`.
    pub fn with_range(mode: BudgetMode, seed: i64, range: BudgetRange) -> BudgetSampler {
        BudgetSampler {
            mode,
            range,
            rng: PyRandom::new(seed),
        }
    }

    /// Switches the mode but keeps the random stream (the golden records interleave modes).
    pub fn set_mode(&mut self, mode: BudgetMode) {
        self.mode = mode;
    }

    pub fn mode(&self) -> BudgetMode {
        self.mode
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Budget {
        self.mode.draw_in(&self.range, &mut self.rng)
    }
}

/// A budget mode name that is not one of `none`, `exact`, `max`, `log`, `both`, `both-both`,
/// `fixed:K`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown budget mode `{0}` (expected none, exact, max, log, both, both-both or fixed:K)")]
pub struct BudgetModeError(pub String);

impl FromStr for BudgetMode {
    type Err = BudgetModeError;
    fn from_str(s: &str) -> Result<BudgetMode, BudgetModeError> {
        let err = || BudgetModeError(s.to_string());
        Ok(match s {
            "none" | "normal" => BudgetMode::None,
            "exact" => BudgetMode::Exact,
            "max" | "maximum" => BudgetMode::Maximum,
            "log" => BudgetMode::Log,
            "both" => BudgetMode::Both,
            "both-both" | "both_both" => BudgetMode::BothBoth,
            _ => {
                let k = s.strip_prefix("fixed:").ok_or_else(err)?;
                BudgetMode::Fixed(k.parse().map_err(|_| err())?)
            }
        })
    }
}

impl fmt::Display for BudgetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetMode::None => f.write_str("none"),
            BudgetMode::Exact => f.write_str("exact"),
            BudgetMode::Maximum => f.write_str("max"),
            BudgetMode::Log => f.write_str("log"),
            BudgetMode::Both => f.write_str("both"),
            BudgetMode::BothBoth => f.write_str("both-both"),
            BudgetMode::Fixed(k) => write!(f, "fixed:{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_mode_is_randint() {
        let mut s = BudgetSampler::new(BudgetMode::Exact, 12345);
        let got: Vec<i64> = (0..5).map(|_| s.next().num_tokens()).collect();
        assert_eq!(got, [953, 1600, 120, 1779, 1790]);
    }

    #[test]
    fn default_range_draws_the_reference_numbers() {
        for mode in [
            BudgetMode::Exact,
            BudgetMode::Maximum,
            BudgetMode::Both,
            BudgetMode::BothBoth,
            BudgetMode::Fixed(7),
        ] {
            let mut a = BudgetSampler::new(mode, 99);
            let mut b = BudgetSampler::with_range(mode, 99, BudgetRange::default());
            for _ in 0..200 {
                assert_eq!(a.next(), b.next());
            }
        }
    }

    #[test]
    fn custom_range_is_reproducible_and_stays_inside() {
        for dist in [BudgetDist::Uniform, BudgetDist::LogUniform] {
            let range = BudgetRange {
                min: 32,
                max: 256,
                dist,
            };
            let draw = |seed| {
                let mut s = BudgetSampler::with_range(BudgetMode::BothBoth, seed, range);
                (0..2000).map(|_| s.next().num_tokens()).collect::<Vec<_>>()
            };
            let a = draw(7);
            assert_eq!(a, draw(7), "same seed, same budgets");
            assert_ne!(a, draw(8));
            assert!(a.iter().all(|n| (32..=256).contains(&n.abs())), "{dist:?}");
            assert!(a.iter().any(|&n| n < -1) && a.iter().any(|&n| n >= 0));
            // Both ends are reached, and log-uniform puts about as many budgets in each doubling.
            assert!(a.iter().any(|n| n.abs() <= 40) && a.iter().any(|n| n.abs() >= 240));
            let low = a.iter().filter(|n| n.abs() < 64).count() as f64;
            let high = a.iter().filter(|n| n.abs() >= 128).count() as f64;
            match dist {
                // uniform: 32 of 225 values below 64, 129 at or above 128
                BudgetDist::Uniform => assert!(high > 3.0 * low, "{low} {high}"),
                BudgetDist::LogUniform => {
                    assert!((0.8..1.25).contains(&(high / low)), "{low} {high}")
                }
            }
        }
        // The first uniform draw is randint(32, 256) of the seeded stream.
        let mut rng = PyRandom::new(5);
        let want = rng.randint(32, 256);
        let mut s = BudgetSampler::with_range(
            BudgetMode::Exact,
            5,
            BudgetRange {
                min: 32,
                max: 256,
                dist: BudgetDist::Uniform,
            },
        );
        assert_eq!(s.next().num_tokens(), want);
    }

    #[test]
    fn impossible_ranges_are_refused() {
        let r = |min, max| BudgetRange {
            min,
            max,
            dist: BudgetDist::Uniform,
        };
        assert!(r(32, 256).validate().is_ok());
        assert!(r(2, 2).validate().is_ok());
        assert!(r(1, 256).validate().is_err());
        assert!(r(300, 256).validate().is_err());
    }

    #[test]
    fn fixed_still_consumes_a_draw() {
        let mut s = BudgetSampler::new(BudgetMode::Fixed(512), 12345);
        assert_eq!(s.next().num_tokens(), 512);
        s.set_mode(BudgetMode::Exact);
        assert_eq!(s.next().num_tokens(), 1600);
    }

    #[test]
    fn log_mode_range_and_parse() {
        let mut s = BudgetSampler::new(BudgetMode::Log, 1);
        for _ in 0..1000 {
            let n = s.next().num_tokens();
            assert!((256..=23170).contains(&n), "{n}");
        }
        for m in [
            "none",
            "exact",
            "max",
            "log",
            "both",
            "both-both",
            "fixed:-256",
        ] {
            assert_eq!(m.parse::<BudgetMode>().unwrap().to_string(), m);
        }
        assert!("fixed:x".parse::<BudgetMode>().is_err());
    }
}
