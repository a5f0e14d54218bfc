//! What a LoRA run adapts: rank, scale, dropout and the projections that get adapters
//! ([`LoraConfig`], the `[lora]` table of the trainer's configs), named as Hugging Face and PEFT
//! name them.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// One of the seven matrices of a decoder layer that can carry an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Projection {
    /// Every projection, in the order adapters are created, saved and listed.
    pub const ALL: [Projection; 7] = [
        Projection::Q,
        Projection::K,
        Projection::V,
        Projection::O,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ];

    /// The Hugging Face module name, the suffix PEFT's `target_modules` matches.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Q => "q_proj",
            Projection::K => "k_proj",
            Projection::V => "v_proj",
            Projection::O => "o_proj",
            Projection::Gate => "gate_proj",
            Projection::Up => "up_proj",
            Projection::Down => "down_proj",
        }
    }

    /// The module path inside a decoder layer (`self_attn.q_proj`, `mlp.down_proj`).
    pub fn module(self) -> &'static str {
        match self {
            Projection::Q => "self_attn.q_proj",
            Projection::K => "self_attn.k_proj",
            Projection::V => "self_attn.v_proj",
            Projection::O => "self_attn.o_proj",
            Projection::Gate => "mlp.gate_proj",
            Projection::Up => "mlp.up_proj",
            Projection::Down => "mlp.down_proj",
        }
    }

    /// The projection a target names: `q_proj`, or any dotted path ending in it
    /// (`self_attn.q_proj`), as PEFT matches module names by suffix.
    pub fn from_target(target: &str) -> Option<Projection> {
        let last = target.rsplit('.').next().unwrap_or(target);
        Projection::ALL.into_iter().find(|p| p.name() == last)
    }
}

/// A set of projections; a bit set so that [`LoraConfig`] (and with it `LoadOptions`) stays
/// `Copy`. Written as a list of names (`["q_proj", "v_proj"]`), or PEFT's `"all-linear"`.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetList", into = "Vec<String>")]
pub struct Targets(u8);

impl Targets {
    /// All seven projections (PEFT's `all-linear` for these decoders, the LM head excepted).
    pub const ALL: Targets = Targets(0x7f);

    pub fn contains(self, p: Projection) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The projections in the set, in [`Projection::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Projection> {
        Projection::ALL
            .into_iter()
            .filter(move |&p| self.contains(p))
    }

    /// The set named by `names` (module names or suffixes, or `all-linear`).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Targets> {
        let mut bits = 0u8;
        for n in names {
            let n = n.as_ref();
            if n == "all-linear" {
                bits |= Targets::ALL.0;
                continue;
            }
            let p = Projection::from_target(n).ok_or_else(|| {
                ModelError::Config(format!(
                    "unknown LoRA target `{n}`: use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear"
                ))
            })?;
            bits |= 1 << p as u8;
        }
        Ok(Targets(bits))
    }
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(Projection::name))
            .finish()
    }
}

impl From<Targets> for Vec<String> {
    fn from(t: Targets) -> Vec<String> {
        t.iter().map(|p| p.name().to_string()).collect()
    }
}

/// The forms a target list takes in TOML and in PEFT's `adapter_config.json`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TargetList {
    One(String),
    Many(Vec<String>),
}

impl TryFrom<TargetList> for Targets {
    type Error = ModelError;

    fn try_from(list: TargetList) -> Result<Targets> {
        match list {
            TargetList::One(s) => Targets::from_names(&[s]),
            TargetList::Many(v) => Targets::from_names(&v),
        }
    }
}

/// Low-rank adapters `W + scale * B A` on a frozen base (Hu et al. 2021), as PEFT defines them:
/// `A [rank, in]` starts kaiming-uniform, `B [out, rank]` at zero, so training starts from the
/// base model exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// The rank `r` of `B A`.
    pub rank: usize,
    /// `lora_alpha`: the update is scaled by `alpha / rank` (or `alpha / sqrt(rank)`).
    pub alpha: f64,
    /// Dropout on the adapter's input during training (PEFT's `lora_dropout`).
    pub dropout: f64,
    /// Which projections get adapters.
    pub targets: Targets,
    /// rsLoRA (Kalajdzievski 2023): scale by `alpha / sqrt(rank)`, which keeps the update's size
    /// stable as the rank grows.
    pub use_rslora: bool,
    /// Seed of the `A` initialisation.
    pub seed: u64,
}

impl Default for LoraConfig {
    /// PEFT's common recipe for small decoders: rank 16, alpha 32 (scale 2), every projection.
    /// No dropout: it would make a sequence's log-probs depend on the draw, and the GRPO ratio
    /// compares two passes over the same tokens.
    fn default() -> Self {
        LoraConfig {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            targets: Targets::ALL,
            use_rslora: false,
            seed: 0,
        }
    }
}

impl LoraConfig {
    /// The factor of `B A x` in a projection's output.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Checks the values a model cannot be built with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(format!("lora: {m}")));
        if self.rank == 0 {
            return bad("rank must be positive".into());
        }
        if !self.alpha.is_finite() {
            return bad(format!("alpha {} is not finite", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} outside [0, 1)", self.dropout));
        }
        if self.targets.is_empty() {
            return bad("no target projections".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_names_suffixes_and_all_linear() {
        let t = Targets::from_names(&["q_proj", "model.layers.0.mlp.down_proj"]).unwrap();
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [Projection::Q, Projection::Down]
        );
        assert_eq!(Targets::from_names(&["all-linear"]).unwrap(), Targets::ALL);
        assert!(Targets::from_names(&["lm_head"]).is_err());
        let names: Vec<String> = Targets::ALL.into();
        assert_eq!(names.len(), 7);
        assert_eq!(Targets::from_names(&names).unwrap(), Targets::ALL);
    }

    #[test]
    fn scale_follows_rslora() {
        let mut c = LoraConfig::default();
        assert_eq!(c.scale(), 2.0);
        c.use_rslora = true;
        assert_eq!(c.scale(), 8.0);
        c.rank = 0;
        assert!(c.validate().is_err());
    }
}
