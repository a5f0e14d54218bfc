//! Activation checkpointing: each decoder layer of a training pass as one autograd node that
//! keeps only its input, and recomputes the layer in the backward pass.
//!
//! candle's autograd keeps every intermediate tensor of the graph alive until the backward pass
//! has run (an op holds its inputs), so a GRPO micro-batch of 8 responses of 128 tokens after a
//! 600-token prompt kept about 20 GB of activations on a Qwen2.5-0.5B shape. Checkpointed, a
//! layer holds its input (`rows x hidden` values) until the backward pass reaches it, and then
//! its whole graph for as long as that layer's backward takes, as PyTorch's
//! `torch.utils.checkpoint` does: about one more forward pass of compute for a memory that no
//! longer grows with the depth.
//!
//! The node's backward rebuilds the layer on its saved input, runs candle's backward on
//! `sum(y * dy)`, returns the input's gradient to the outer graph and adds the layer's own
//! weights' gradients to a side store ([`GradSide`]); [`Model::backward`] merges that store into
//! the outer gradients. The recomputation runs the same kernels in the same order (LoRA dropout
//! masks are drawn from their seeds), so it reproduces the forward pass's values bit for bit,
//! and the gradients equal those of the plain graph up to the summation order of the weights'
//! gradients.

use std::sync::Arc;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor, Var};

use crate::cpu_op::f32_slice;
use crate::error::Result;
use crate::grad_side::GradSide;
use crate::model::{Model, Past, Step};

/// What one checkpointed layer computes from its packed input `z` (a flat vector).
#[derive(Clone)]
enum Segment {
    /// `[b, t, hidden]` rows with no past keys and values.
    Plain { b: usize, t: usize },
    /// A prompt `[1, p, hidden]` then `k` responses `[k, r, hidden]` that attend to it
    /// ([`Model::forward_shared_prefix`]), packed one after the other.
    SharedPrefix {
        p: usize,
        k: usize,
        r: usize,
        step_r: Arc<Step>,
    },
}

/// One decoder layer of `model` as a checkpointed node.
struct LayerOp {
    model: Arc<Model>,
    layer: usize,
    step: Arc<Step>,
    segment: Segment,
}

impl LayerOp {
    fn new(model: Arc<Model>, layer: usize, step: Arc<Step>, segment: Segment) -> Self {
        LayerOp {
            model,
            layer,
            step,
            segment,
        }
    }

    /// The layer on packed input `z` (flat), packed output (flat): the graph of the layer when
    /// `z` is tracked, plain values otherwise.
    fn run(&self, z: &Tensor) -> Result<Tensor> {
        let m = &self.model;
        let layer = &m.layers[self.layer];
        let h = m.config.hidden_size;
        match &self.segment {
            Segment::Plain { b, t } => {
                let x = z.reshape((*b, *t, h))?;
                Ok(m.layer_forward(layer, &x, &self.step, Past::None)?
                    .0
                    .flatten_all()?)
            }
            Segment::SharedPrefix { p, k, r, step_r } => {
                let xp = z.narrow(0, 0, p * h)?.reshape((1, *p, h))?;
                let xr = z.narrow(0, p * h, k * r * h)?.reshape((*k, *r, h))?;
                let (yp, pk, pv) = m.layer_forward(layer, &xp, &self.step, Past::None)?;
                let yr = m
                    .layer_forward(layer, &xr, step_r, Past::Shared(&pk, &pv))?
                    .0;
                Ok(Tensor::cat(&[yp.flatten_all()?, yr.flatten_all()?], 0)?)
            }
        }
    }
}

fn to_candle(e: crate::error::ModelError) -> candle_core::Error {
    match e {
        crate::error::ModelError::Candle(e) => e,
        other => candle_core::Error::Msg(other.to_string()),
    }
}

impl CustomOp2 for LayerOp {
    fn name(&self) -> &'static str {
        "medu1-checkpointed-layer"
    }

    /// `anchor` is one of the layer's trainable tensors: it makes the node part of the graph
    /// even where `z` is not (the first layer's input, embeddings of a frozen table), and gets
    /// no gradient through this edge.
    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        l: &Layout,
        _anchor: &CpuStorage,
        _anchor_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = f32_slice(s, l, "checkpointed layer")?;
        let z = Tensor::from_slice(data, data.len(), &Device::Cpu)?;
        let y = self.run(&z).map_err(to_candle)?.detach();
        let n = y.elem_count();
        Ok((CpuStorage::F32(y.to_vec1::<f32>()?), Shape::from(n)))
    }

    fn bwd(
        &self,
        z: &Tensor,
        _anchor: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let zv = Var::from_tensor(&z.detach())?;
        let y = self.run(zv.as_tensor()).map_err(to_candle)?;
        let grads = (y * dy.detach())?.sum_all()?.backward()?;
        let side = self
            .model
            .grad_side
            .as_ref()
            .expect("checkpointed layers run on a model with a side store");
        for (_, var) in &self.model.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                side.add(var.as_tensor().id(), g.clone())?;
            }
        }
        Ok((grads.get(zv.as_tensor()).cloned(), None))
    }
}

/// The tensor that anchors layer `i`'s checkpointed node in the graph: one of its trainable
/// weights, or `None` when the layer has none (then it needs no checkpoint: nothing in it
/// trains, and its input's gradient flows through plain ops).
fn anchor(model: &Model, i: usize) -> Option<Tensor> {
    let prefix = format!("model.layers.{i}.");
    let lora_prefix = format!("base_model.model.model.layers.{i}.");
    model
        .vars
        .iter()
        .find(|(n, _)| n.starts_with(&prefix) || n.starts_with(&lora_prefix))
        .map(|(_, v)| v.as_tensor().clone())
}

impl Model {
    /// The decoder layers over `x` `[b, t, hidden]` with no past, each layer a checkpointed node.
    pub(crate) fn checkpointed_layers(&self, x: &Tensor, step: &Step) -> Result<Tensor> {
        let (b, t, hidden) = x.dims3()?;
        let z = self.checkpointed(x.flatten_all()?, step.clone(), Segment::Plain { b, t })?;
        Ok(z.reshape((b, t, hidden))?)
    }

    /// [`Model::forward_shared_prefix`]'s layers, each a checkpointed node over the prompt
    /// `xp` `[1, p, hidden]` and the responses `xr` `[k, r, hidden]` packed together.
    pub(crate) fn checkpointed_shared_prefix(
        &self,
        xp: &Tensor,
        xr: &Tensor,
        step_p: Step,
        step_r: Step,
    ) -> Result<(Tensor, Tensor)> {
        let (_, p, hidden) = xp.dims3()?;
        let (k, r, _) = xr.dims3()?;
        let segment = Segment::SharedPrefix {
            p,
            k,
            r,
            step_r: Arc::new(step_r),
        };
        let z = Tensor::cat(&[xp.flatten_all()?, xr.flatten_all()?], 0)?;
        let z = self.checkpointed(z, step_p, segment)?;
        Ok((
            z.narrow(0, 0, p * hidden)?.reshape((1, p, hidden))?,
            z.narrow(0, p * hidden, k * r * hidden)?
                .reshape((k, r, hidden))?,
        ))
    }

    /// Every layer over the packed input `z`, each one node (`segment` says how `z` unpacks).
    fn checkpointed(&self, mut z: Tensor, step: Step, segment: Segment) -> Result<Tensor> {
        let model = Arc::new(self.clone());
        let step = Arc::new(step);
        for i in 0..self.layers.len() {
            let op = LayerOp::new(model.clone(), i, step.clone(), segment.clone());
            z = match anchor(self, i) {
                Some(a) => z.apply_op2(&a, op)?,
                None => op.run(&z)?,
            };
        }
        Ok(z)
    }

    /// Turns activation checkpointing on or off for the training passes
    /// ([`Model::forward`], [`Model::forward_shared_prefix`] and what builds on them): each
    /// decoder layer keeps only its input until the backward pass recomputes it. Gradients must
    /// then be taken with [`Model::backward`]. It has no effect on a model with nothing to
    /// train.
    ///
    /// On a GPU the setting is ignored: the layer node is CPU code, and a GPU's memory holds the
    /// activations of the shapes medu1 trains there.
    pub fn set_activation_checkpointing(&mut self, on: bool) {
        let on = on && !self.vars.is_empty() && self.device().is_cpu();
        self.grad_side = on.then(|| Arc::new(GradSide::default()));
    }

    pub fn activation_checkpointing(&self) -> bool {
        self.grad_side.is_some()
    }

    /// `loss.backward()`, plus the gradients that checkpointed layers computed in their own
    /// backward passes. Use it instead of `Tensor::backward` for a loss built from this model.
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore> {
        let mut grads = loss.backward()?;
        if let Some(side) = &self.grad_side {
            let mut side = side.take();
            for (_, var) in &self.vars {
                if let Some(g) = side.remove(&var.as_tensor().id()) {
                    let g = match grads.remove(var.as_tensor()) {
                        Some(prev) => (prev + g)?,
                        None => g,
                    };
                    grads.insert(var.as_tensor(), g);
                }
            }
        }
        Ok(grads)
    }
}
