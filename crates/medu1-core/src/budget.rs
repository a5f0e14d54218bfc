//! The length budget written into the prompt and used by the length reward term.
//!
//! The reference stores one integer `num_tokens` (N): −1 means no budget, N ≥ 0 "Think for N
//! tokens." (exact mode), N < −1 "Think for maximum |N| tokens." (maximum mode). The enum makes the
//! three modes explicit while round-tripping the integer exactly.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum Budget {
    /// N = −1: no budget sentence, no length term.
    None,
    /// N ≥ 0: "Think for N tokens."
    Exact(u64),
    /// N < −1: "Think for maximum |N| tokens." (|N| ≥ 2; maximum 1 is not expressible in the
    /// reference's encoding, where −1 means no budget).
    Maximum(u64),
}

impl Budget {
    /// The reference's integer encoding.
    pub fn from_num_tokens(n: i64) -> Budget {
        if n == -1 {
            Budget::None
        } else if n < 0 {
            Budget::Maximum(n.unsigned_abs())
        } else {
            Budget::Exact(n as u64)
        }
    }

    /// The reference's integer encoding (saturating for absurd values).
    pub fn num_tokens(self) -> i64 {
        match self {
            Budget::None => -1,
            Budget::Exact(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Budget::Maximum(n) => -(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    /// The budget sentence exactly as the reference writes it (`""` for no budget).
    pub fn instruction(self) -> String {
        match Budget::from_num_tokens(self.num_tokens()) {
            Budget::None => String::new(),
            Budget::Maximum(n) => format!("Think for maximum {n} tokens."),
            Budget::Exact(n) => format!("Think for {n} tokens."),
        }
    }
}

impl From<Budget> for i64 {
    fn from(b: Budget) -> i64 {
        b.num_tokens()
    }
}

impl From<i64> for Budget {
    fn from(n: i64) -> Budget {
        Budget::from_num_tokens(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_reference_encoding() {
        for n in [-100000, -2000, -2, -1, 0, 1, 100, 2000, 100000] {
            assert_eq!(Budget::from_num_tokens(n).num_tokens(), n);
        }
    }

    #[test]
    fn instruction_matches_reference_sentences() {
        assert_eq!(Budget::from_num_tokens(-1).instruction(), "");
        assert_eq!(
            Budget::from_num_tokens(0).instruction(),
            "Think for 0 tokens."
        );
        assert_eq!(
            Budget::from_num_tokens(1500).instruction(),
            "Think for 1500 tokens."
        );
        assert_eq!(
            Budget::from_num_tokens(-2).instruction(),
            "Think for maximum 2 tokens."
        );
    }

    #[test]
    fn serde_uses_the_integer() {
        assert_eq!(
            serde_json::to_string(&Budget::Maximum(300)).unwrap(),
            "-300"
        );
        let b: Budget = serde_json::from_str("-1").unwrap();
        assert_eq!(b, Budget::None);
    }
}
