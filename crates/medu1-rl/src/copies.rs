//! The models a GRPO step derives from its policy: the rollout model (an inference-format
//! snapshot, or a LoRA policy's inference view) and the frozen reference of the KL term (an owned
//! f32 copy, or a LoRA policy's base without adapters), and the seeds of LoRA dropout masks.

use std::collections::HashMap;

use candle_core::Tensor;
use medu1_model::{DeviceSpec, InferQuant, LoadOptions, Mode, Model};

use crate::error::{Result, TrainError};

pub fn rollout_quant(name: &str) -> Result<InferQuant> {
    name.parse()
        .map_err(|_| TrainError::Quant(name.to_string()))
}

/// An inference-mode view of `policy`'s current weights. It may share storage with the policy
/// (candle's `detach` does), so it is only valid until the next optimizer step: the rollout copy
/// is rebuilt after every update. A LoRA policy gives its inference view: the base as it is
/// (`quant` does not apply) and the adapters' current values.
pub fn snapshot(policy: &Model, quant: InferQuant) -> Result<Model> {
    if policy.mode() == Mode::Lora {
        return Ok(policy.inference_view()?);
    }
    let tensors: HashMap<String, Tensor> = policy
        .trainable_vars()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
        .collect();
    Ok(Model::from_tensors(
        policy.config().clone(),
        tensors,
        LoadOptions::infer_with(quant).on(DeviceSpec::of(policy.device())),
    )?)
}

/// An f32 inference-mode copy of `policy`'s current weights that owns its storage, so neither the
/// optimizer's in-place updates nor a checkpoint restored into the policy reach it: the frozen
/// reference of the KL term. A LoRA policy's reference shares the frozen base and copies only
/// the adapters (none while every `B` is zero): after a LoRA warm-up the reference is the
/// warmed-up policy, as it is for full fine-tuning, and it runs the policy's kernels.
pub fn frozen_copy(policy: &Model) -> Result<Model> {
    if policy.mode() == Mode::Lora {
        return Ok(policy.frozen_adapters()?);
    }
    let tensors = policy
        .trainable_vars()
        .iter()
        .map(|(n, v)| Ok((n.clone(), v.as_tensor().detach().copy()?)))
        .collect::<candle_core::Result<HashMap<String, Tensor>>>()?;
    Ok(Model::from_tensors(
        policy.config().clone(),
        tensors,
        LoadOptions::infer_with(InferQuant::F32).on(DeviceSpec::of(policy.device())),
    )?)
}

/// A view of `policy` whose LoRA adapters draw dropout masks from the run's `seed` and `key`,
/// or `None` when it has no adapter dropout (then `policy` itself is the training pass's model).
/// GRPO and the warm-up key their masks by step and micro-batch, so a resumed run draws the
/// same ones.
pub(crate) fn dropout_view(policy: &Model, seed: u64, key: [u64; 3]) -> Option<Model> {
    policy
        .lora_config()
        .is_some_and(|l| l.dropout > 0.0)
        .then(|| policy.with_dropout_seed(Some(dropout_seed(seed, key))))
}

/// A dropout seed from the run's seed and `key` (a splitmix64 chain).
pub(crate) fn dropout_seed(seed: u64, key: [u64; 3]) -> u64 {
    key.iter().fold(seed, |h, &k| {
        medu1_core::seed::mix64((h ^ k).wrapping_add(medu1_core::seed::GOLDEN))
    })
}
