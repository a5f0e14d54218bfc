//! Deterministic random weights: each tensor drawn from the seed and its name alone (so any
//! tensor can be regenerated without the others, in any order), N(0, 0.02) for matrices and
//! biases, ones for norm weights. Rows are drawn in parallel chunks with their own streams.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::Result;

/// The standard deviation of every random matrix and bias.
pub const STD: f32 = 0.02;

/// Values per independent random stream.
const CHUNK: usize = 1 << 16;

/// FNV-1a of a tensor name, so that each name has its own streams.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The values of tensor `name` with `n` elements.
pub fn random_values(name: &str, n: usize, seed: u64) -> Vec<f32> {
    if name.ends_with("norm.weight") {
        return vec![1.0; n];
    }
    let base = seed ^ name_hash(name);
    let mut v = vec![0f32; n];
    v.par_chunks_mut(CHUNK).enumerate().for_each(|(k, out)| {
        let mut rng = ChaCha8Rng::seed_from_u64(base.wrapping_add(k as u64));
        fill_normal(&mut rng, out);
    });
    v
}

/// N(0, STD) by Box-Muller, two values per pair of uniforms.
fn fill_normal(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        let u1: f32 = 1.0 - rng.random::<f32>(); // (0, 1]: ln is finite
        let u2: f32 = rng.random();
        let r = STD * (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
        pair[0] = r * c;
        if let Some(second) = pair.get_mut(1) {
            *second = r * s;
        }
    }
}

/// Tensor `name` of `shape` as f32.
pub fn random_tensor(name: &str, shape: &[usize], seed: u64) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(
        random_values(name, n, seed),
        shape,
        &Device::Cpu,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_depend_on_seed_and_name_and_have_the_stated_spread() {
        let a = random_values("model.layers.0.mlp.up_proj.weight", 200_000, 7);
        assert_eq!(
            a,
            random_values("model.layers.0.mlp.up_proj.weight", 200_000, 7)
        );
        assert_ne!(
            a,
            random_values("model.layers.0.mlp.up_proj.weight", 200_000, 8)
        );
        assert_ne!(
            a,
            random_values("model.layers.1.mlp.up_proj.weight", 200_000, 7)
        );
        let n = a.len() as f64;
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let sd = (a
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!(mean.abs() < 1e-3, "{mean}");
        assert!((sd - 0.02).abs() < 2e-4, "{sd}");
        assert!(
            random_values("model.norm.weight", 5, 7)
                .iter()
                .all(|&x| x == 1.0)
        );
    }
}
