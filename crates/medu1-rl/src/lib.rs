//! GRPO for medical reasoning (spec §4): advantages, the clipped policy loss with KL and entropy
//! terms, a fused AdamW with the reference's schedule, and the loop that owns model, optimiser and
//! schedule ([`Grpo`]), with atomic checkpoints and per-step metrics.
//!
//! The numerical pieces are independent of any model so they can be tested on hand-computed cases;
//! the loop builds on them.

pub mod advantage;
pub mod batch;
pub mod checkpoint;
pub mod config;
mod copies;
pub mod dataset;
pub mod error;
pub mod grpo;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod rollout;
pub mod run;
pub mod sft;
pub mod target;

pub use advantage::{AdvantageEstimator, advantages, zero_variance_share};
pub use config::{TrainConfig, load_toml};
pub use error::TrainError;
pub use grpo::{Grpo, Progress};
pub use loss::{
    ClipRange, Divisor, KlEstimator, LossAgg, LossScope, PolicyLoss, aggregate_over,
    entropy_from_logits, kl_penalty, policy_loss, policy_loss_over,
};
pub use optim::{AdamW, AdamWConfig, LrSchedule, clip_grad_norm};
pub use rollout::{MedU1Rewarder, RewardInput, RewardOutput, Rewarder};
pub use run::CheckpointHook;
pub use sft::{Sft, SftConfig, sft_target};
