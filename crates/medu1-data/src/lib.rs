//! Benchmark loaders and the Med-U1 prompt builder (in progress).

pub mod calc;
