//! The KV cache of generation: keys and values preallocated for every layer and written in place.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::Result;

/// Preallocated keys and values for every layer, `[batch, kv_heads, capacity, head_dim]`, written
/// in place so that decoding never concatenates.
#[derive(Debug)]
pub struct KvCache {
    pub(crate) k: Vec<Tensor>,
    pub(crate) v: Vec<Tensor>,
    pub(crate) len: usize,
    pub(crate) cap: usize,
    /// Per row and position: a real token (true) or padding.
    pub(crate) valid: Vec<Vec<bool>>,
    /// Per row: the rope position of the next real token.
    pub(crate) next_pos: Vec<u32>,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` positions, on the model's device.
    pub fn new(cfg: &ModelConfig, batch: usize, capacity: usize, device: &Device) -> Result<Self> {
        let shape = (batch, cfg.num_key_value_heads, capacity, cfg.head_dim);
        let mut k = Vec::with_capacity(cfg.num_hidden_layers);
        let mut v = Vec::with_capacity(cfg.num_hidden_layers);
        for _ in 0..cfg.num_hidden_layers {
            k.push(Tensor::zeros(shape, DType::F32, device)?);
            v.push(Tensor::zeros(shape, DType::F32, device)?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            cap: capacity,
            valid: vec![Vec::with_capacity(capacity); batch],
            next_pos: vec![0; batch],
        })
    }

    /// Positions filled so far (including left padding).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn batch(&self) -> usize {
        self.next_pos.len()
    }

    /// A new cache whose row `i` is a copy of row `rows[i]` of this one: shares one prompt's
    /// prefill among its samples, and drops finished rows.
    pub fn select_rows(&self, rows: &[u32]) -> Result<KvCache> {
        let idx = Tensor::from_slice(rows, rows.len(), self.k[0].device())?;
        let sel = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
            ts.iter()
                .map(|t| Ok(t.index_select(&idx, 0)?))
                .collect::<Result<Vec<_>>>()
        };
        Ok(KvCache {
            k: sel(&self.k)?,
            v: sel(&self.v)?,
            len: self.len,
            cap: self.cap,
            valid: rows
                .iter()
                .map(|&r| self.valid[r as usize].clone())
                .collect(),
            next_pos: rows.iter().map(|&r| self.next_pos[r as usize]).collect(),
        })
    }
}
