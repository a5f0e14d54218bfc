//! The side store of activation checkpointing (`recompute.rs`): gradients of trainable weights
//! computed inside checkpointed layers' backward passes, which candle's backward cannot return
//! through the node's inputs.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Tensor, TensorId};

/// Gradients of trainable weights computed inside checkpointed layers' backward passes, by the
/// weight's tensor id, until `Model::backward` moves them into the outer `GradStore`.
#[derive(Debug, Default)]
pub(crate) struct GradSide(Mutex<HashMap<TensorId, Tensor>>);

impl GradSide {
    pub(crate) fn add(&self, id: TensorId, g: Tensor) -> candle_core::Result<()> {
        let mut map = self.0.lock().expect("grad side store poisoned");
        let g = match map.remove(&id) {
            Some(prev) => (prev + g)?,
            None => g,
        };
        map.insert(id, g);
        Ok(())
    }

    pub(crate) fn take(&self) -> HashMap<TensorId, Tensor> {
        std::mem::take(&mut *self.0.lock().expect("grad side store poisoned"))
    }
}
