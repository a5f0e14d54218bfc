//! Deriving independent seeds from one: splitmix64's finalizer, shared by every place that
//! mixes a run seed with indices (sampling streams, evaluation items, LoRA dropout masks).

/// splitmix64's golden-ratio increment, for spreading an index before [`mix64`].
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijection of `z` whose nearby inputs give unrelated outputs.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_is_splitmix64s_output_function() {
        // splitmix64 seeded with 0 yields 0xE220A8397B1DCDAF first (state + GOLDEN, mixed).
        assert_eq!(mix64(GOLDEN), 0xE220_A839_7B1D_CDAF);
    }
}
