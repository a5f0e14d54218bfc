//! Python's `random` module, bit for bit.
//!
//! The reference data script draws each example's length budget from `random` after
//! `random.seed(S)`; reproducing its output (and the golden `published_script` records) needs the
//! same Mersenne Twister, the same integer seeding (`init_by_array` over the seed's 32-bit words)
//! and the same derived draws (`random()`, `getrandbits`, `_randbelow`, `randint`, `uniform`).

const N: usize = 624;
const M: usize = 397;

/// CPython's `random.Random`, restricted to the methods medu1 needs.
#[derive(Debug, Clone)]
pub struct PyRandom {
    mt: Box<[u32; N]>,
    index: usize,
}

impl PyRandom {
    /// `random.seed(seed)` for an `int` seed: the absolute value split into little-endian 32-bit
    /// words (`[0]` for zero) feeds `init_by_array`.
    pub fn new(seed: i64) -> PyRandom {
        let mut n = seed.unsigned_abs();
        let mut key = Vec::new();
        while n > 0 {
            key.push(n as u32);
            n >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        PyRandom::from_key(&key)
    }

    /// `init_by_array(key)`.
    pub fn from_key(key: &[u32]) -> PyRandom {
        let mut mt = Box::new([0u32; N]);
        mt[0] = 19_650_218;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        PyRandom { mt, index: N }
    }

    fn refill(&mut self) {
        let mt = &mut self.mt;
        for k in 0..N {
            let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % N] & 0x7fff_ffff);
            let mut v = mt[(k + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            mt[k] = v;
        }
        self.index = 0;
    }

    /// `genrand_uint32`: the next tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.refill();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random.random()`: 53 random bits from two draws, in [0, 1).
    pub fn random(&mut self) -> f64 {
        let a = u64::from(self.next_u32() >> 5);
        let b = u64::from(self.next_u32() >> 6);
        (a as f64 * 67_108_864.0 + b as f64) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.getrandbits(k)` for 0 ≤ k ≤ 64 (words are consumed least significant first).
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits supports at most 64 bits");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        low | (high << 32)
    }

    /// `random._randbelow(n)` (rejection sampling with `getrandbits(n.bit_length())`).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow needs a positive bound");
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.randint(a, b)`, inclusive on both ends.
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        assert!(a <= b, "randint needs a <= b");
        let width = (b as i128 - a as i128 + 1) as u64;
        (a as i128 + self.randbelow(width) as i128) as i64
    }

    /// `random.uniform(a, b)` = `a + (b - a) * random()`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by CPython 3 (`random.seed(...)` then the same calls).
    #[test]
    fn matches_cpython_random() {
        let mut r = PyRandom::new(12345);
        assert_eq!(r.random(), 0.41661987254534116);
        assert_eq!(r.random(), 0.010169169457068361);
        assert_eq!(r.random(), 0.8252065092537432);
    }

    #[test]
    fn matches_cpython_randint() {
        let mut r = PyRandom::new(12345);
        let got: Vec<i64> = (0..5).map(|_| r.randint(100, 2000)).collect();
        assert_eq!(got, [953, 1600, 120, 1779, 1790]);
    }

    #[test]
    fn matches_cpython_getrandbits_and_uniform() {
        let mut r = PyRandom::new(0);
        let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, [3626764237, 1654615998, 3255389356]);
        assert_eq!(r.getrandbits(64), 7758176404715800194);
        assert_eq!(r.uniform(8.0, 14.5), 8.263148458175055);
    }

    #[test]
    fn multi_word_and_negative_seeds() {
        let mut r = PyRandom::new((1i64 << 40) + 7);
        assert_eq!(r.random(), 0.6137037779936511);
        assert_eq!(r.randint(0, 1_000_000_000_000), 704138462757);
        // Python seeds with abs(n).
        assert_eq!(PyRandom::new(-5).random(), 0.6229016948897019);
    }
}
