//! Relative error of quantized matmuls against f32 on the embedded model's weights.
#![allow(clippy::print_stdout)]
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap();
    let mut f = std::fs::File::open(&path)?;
    let ct = gguf_file::Content::read(&mut f)?;
    for name in [
        "blk.3.attn_q.weight",
        "blk.3.ffn_down.weight",
        "token_embd.weight",
    ] {
        let q = ct.tensor(&mut f, name, &Device::Cpu)?;
        let w = q.dequantize(&Device::Cpu)?;
        let k = w.dim(1)?;
        for m in [1usize, 5] {
            let x = Tensor::randn(0f32, 1.0, (1, m, k), &Device::Cpu)?;
            let exact = x.squeeze(0)?.matmul(&w.t()?)?;
            let rel = |y: &Tensor| -> candle_core::Result<f32> {
                let y = y.squeeze(0)?;
                let e = (&y - &exact)?
                    .sqr()?
                    .sum_all()?
                    .sqrt()?
                    .to_scalar::<f32>()?;
                let n = exact.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
                Ok(e / n)
            };
            let orig =
                QMatMul::from_qtensor(ct.tensor(&mut f, name, &Device::Cpu)?)?.forward(&x)?;
            let q8 = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?.forward(&x)?;
            println!(
                "{name} m={m} {:?}: original rel err {:.5}, q8_0 rel err {:.5}",
                q.dtype(),
                rel(&orig)?,
                rel(&q8)?
            );
        }
    }
    Ok(())
}
