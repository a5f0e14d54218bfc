//! GRPO for medical reasoning (spec §4): advantages, the clipped policy loss with KL and entropy
//! terms, a fused AdamW with the reference's schedule, and the training loop's supporting pieces.
//!
//! The numerical pieces are independent of any model so they can be tested on hand-computed cases;
//! the loop that owns model, optimiser and schedule builds on them.

pub mod advantage;
pub mod loss;
pub mod optim;

pub use advantage::{AdvantageEstimator, advantages, zero_variance_share};
pub use loss::{
    ClipRange, KlEstimator, LossAgg, PolicyLoss, entropy_from_logits, kl_penalty, policy_loss,
};
pub use optim::{AdamW, AdamWConfig, LrSchedule, clip_grad_norm};
