//! Per-example length budgets, drawn the way the reference data script draws them.
//!
//! `scripts/data/deepscaler_dataset.py` draws one budget per example from Python's `random`
//! (spec §1.4). The draw order matters for reproducing its files: no draw for `--do_normal`;
//! `randint(100, 2000)` for the default, even when `--num_tokens K` then overrides it;
//! `random() < 0.5` *before* `randint` for `--use_both`; `randint` *before* `random()` for
//! `--use_both_both`; `int(2 ** uniform(8, 14.5))` for `--use_log`.

use crate::pyrandom::PyRandom;
use medu1_core::Budget;
use std::fmt;
use std::str::FromStr;

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
        let n = match self {
            BudgetMode::None => -1,
            BudgetMode::Exact => rng.randint(100, 2000),
            BudgetMode::Maximum => -rng.randint(100, 2000),
            BudgetMode::Log => 2f64.powf(rng.uniform(8.0, 14.5)) as i64,
            BudgetMode::Both => {
                if rng.random() < 0.5 {
                    rng.randint(100, 2000)
                } else {
                    -1
                }
            }
            BudgetMode::BothBoth => {
                let n = rng.randint(100, 2000);
                if rng.random() < 0.5 { -n } else { n }
            }
            BudgetMode::Fixed(k) => {
                let _ = rng.randint(100, 2000);
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
    rng: PyRandom,
}

impl BudgetSampler {
    /// `random.seed(seed)` then draws in `mode`.
    pub fn new(mode: BudgetMode, seed: i64) -> BudgetSampler {
        BudgetSampler {
            mode,
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
        self.mode.draw(&mut self.rng)
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
