//! LoRA over a frozen quantized base: zero adapters keep the inference logits' bits, adapter
//! gradients against finite differences and against the dense training path, PEFT adapter
//! files round-tripping (also over an interleaved-rope llama GGUF), merging, and that no f32
//! copy of the base matrices is held.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor, Var};
use medu1_model::lora::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapter_name};
use medu1_model::{
    Arch, InferQuant, LoadOptions, LoraConfig, Mode, Model, ModelConfig, Projection, RopeLayout,
    Targets,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 64;

/// Every input width a multiple of 32, so every matrix has a Q8_0 form.
fn config(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: VOCAB,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 128,
        tie_word_embeddings: arch == Arch::Qwen2,
        attention_bias: arch == Arch::Qwen2,
        rope_layout: RopeLayout::HalfSplit,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32, offset: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// `(name, [out, in])` of every matrix of layer `l`.
fn matrices(cfg: &ModelConfig, l: usize) -> Vec<(String, [usize; 2])> {
    let (d, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let shape = |p: Projection| match p {
        Projection::Q => [nh * hd, d],
        Projection::K | Projection::V => [nkv * hd, d],
        Projection::O => [d, nh * hd],
        Projection::Gate | Projection::Up => [i, d],
        Projection::Down => [d, i],
    };
    Projection::ALL
        .into_iter()
        .map(|p| (format!("model.layers.{l}.{}.weight", p.module()), shape(p)))
        .collect()
}

fn weights(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = cfg.hidden_size;
    let mut w = HashMap::new();
    let embed = if cfg.tie_word_embeddings { 0.3 } else { 1.0 };
    w.insert(
        "model.embed_tokens.weight".into(),
        rand_tensor(&mut rng, &[VOCAB, d], embed, 0.0),
    );
    for l in 0..cfg.num_hidden_layers {
        for (name, shape) in matrices(cfg, l) {
            w.insert(name, rand_tensor(&mut rng, &shape, 0.25, 0.0));
        }
        for n in ["input_layernorm", "post_attention_layernorm"] {
            let t = rand_tensor(&mut rng, &[d], 0.2, 1.0);
            w.insert(format!("model.layers.{l}.{n}.weight"), t);
        }
        if cfg.attention_bias {
            for (p, rows) in [("q", 64), ("k", 32), ("v", 32)] {
                let t = rand_tensor(&mut rng, &[rows], 0.2, 0.0);
                w.insert(format!("model.layers.{l}.self_attn.{p}_proj.bias"), t);
            }
        }
    }
    w.insert(
        "model.norm.weight".into(),
        rand_tensor(&mut rng, &[d], 0.2, 1.0),
    );
    if !cfg.tie_word_embeddings {
        let t = rand_tensor(&mut rng, &[VOCAB, d], 1.0, 0.0);
        w.insert("lm_head.weight".into(), t);
    }
    w
}

fn lora_cfg() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        seed: 3,
        ..LoraConfig::default()
    }
}

/// LoRA over a dense f32 base (no quantization anywhere): the smooth reference.
fn lora_f32(cfg: LoraConfig) -> LoadOptions {
    LoadOptions {
        quant: InferQuant::F32,
        ..LoadOptions::lora(cfg)
    }
}

/// Gives every `B` (and `A`) random values, so every adapter gradient is non-zero.
fn randomize_adapters(model: &Model, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (_, v) in model.trainable_vars() {
        let t = rand_tensor(&mut rng, v.dims(), 0.2, 0.0);
        v.set(&t).unwrap();
    }
}

fn ids(rows: &[Vec<u32>]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.concat();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

fn seq(seed: u64, len: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| rng.random_range(0..VOCAB as u32))
        .collect()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// `sum(logits * r)` in f64, a loss every logit weighs into differently.
fn loss(model: &Model, input: &Tensor, r: &Tensor) -> Tensor {
    let logits = model.forward(input, None).unwrap();
    (logits * r)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .sum_all()
        .unwrap()
}

fn weights_of(model: &Model) -> Vec<(String, Tensor)> {
    model
        .trainable_vars()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().detach().copy().unwrap()))
        .collect()
}

/// (a) `B = 0` adds exactly zero: the LoRA model, its reference and its inference view give the
/// bits of the same checkpoint loaded for inference, through the same quantized kernels.
#[test]
fn zero_adapters_leave_the_quantized_logits_bit_identical() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let cfg = config(arch);
        let w = weights(&cfg, 7);
        let infer = Model::from_tensors(cfg.clone(), w.clone(), LoadOptions::infer()).unwrap();
        let lora = Model::from_tensors(cfg.clone(), w, LoadOptions::lora(lora_cfg())).unwrap();
        assert_eq!(lora.mode(), Mode::Lora);
        assert_eq!(lora.trainable_vars().len(), 2 * 7 * cfg.num_hidden_layers);
        // 24 tokens: the full-sequence attention path in both modes; 3 tokens: the decode
        // kernel, which only the inference view shares with the inference model.
        for (len, train_path_too) in [(24, true), (3, false)] {
            let input = ids(&[seq(1, len), seq(2, len)]);
            let want = bits(&infer.forward(&input, None).unwrap());
            let view = lora.inference_view().unwrap();
            assert_eq!(
                bits(&view.forward(&input, None).unwrap()),
                want,
                "{arch:?} view"
            );
            if train_path_too {
                let got = bits(&lora.forward(&input, None).unwrap());
                assert_eq!(got, want, "{arch:?} lora");
                let reference = lora.without_adapters();
                assert!(reference.trainable_vars().is_empty());
                let got = bits(&reference.forward(&input, None).unwrap());
                assert_eq!(got, want, "{arch:?} reference");
            }
        }
        // Non-zero adapters change the policy's logits but not the reference's, and a view
        // made before the update sees the adapters' new values.
        let early_view = lora.inference_view().unwrap();
        randomize_adapters(&lora, 5);
        let input = ids(&[seq(1, 24)]);
        let want = infer.forward(&input, None).unwrap();
        assert!(max_diff(&lora.forward(&input, None).unwrap(), &want) > 1e-3);
        let reference = lora.without_adapters().forward(&input, None).unwrap();
        assert_eq!(bits(&reference), bits(&want));
        let a = early_view.forward(&input, None).unwrap();
        let b = lora.forward(&input, None).unwrap();
        assert_eq!(bits(&a), bits(&b), "{arch:?} view after update");
    }
}

/// The gradients of every adapter matrix of `model` for `loss(model)`.
fn adapter_grads(model: &Model, input: &Tensor, r: &Tensor) -> Vec<(String, Tensor)> {
    let g = loss(model, input, r).backward().unwrap();
    model
        .trainable_vars()
        .iter()
        .map(|(n, v)| (n.clone(), g.get(v).expect("every adapter").clone()))
        .collect()
}

/// The adapter gradients by the chain rule through the dense training path: a train-mode model
/// over `W' = W_deq + s B A` gives `G = dL/dW'`, and `dL/dA = s B^T G`, `dL/dB = s G A^T`.
fn grads_by_hand(lora: &Model, input: &Tensor, r: &Tensor) -> HashMap<String, Tensor> {
    let s = lora.lora_config().unwrap().scale();
    let (cfg, merged) = lora.merged_hf_tensors().unwrap();
    let dense = Model::from_tensors(cfg, merged, LoadOptions::train()).unwrap();
    let g = loss(&dense, input, r).backward().unwrap();
    let vars: HashMap<&str, &Var> = dense
        .trainable_vars()
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    let adapters: HashMap<&str, &Var> = lora
        .trainable_vars()
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    let mut out = HashMap::new();
    for l in 0..lora.config().num_hidden_layers {
        for p in Projection::ALL {
            let gw = g
                .get(vars[format!("model.layers.{l}.{}.weight", p.module()).as_str()])
                .unwrap();
            let (na, nb) = (adapter_name(l, p, 'A'), adapter_name(l, p, 'B'));
            let (a, b) = (adapters[na.as_str()], adapters[nb.as_str()]);
            let da = (b.t().unwrap().matmul(gw).unwrap() * s).unwrap();
            let db = (gw.matmul(&a.t().unwrap()).unwrap() * s).unwrap();
            out.insert(na, da);
            out.insert(nb, db);
        }
    }
    out
}

/// The largest gradient error relative to the largest gradient entry, over all adapters.
fn relative_error(got: &[(String, Tensor)], want: &HashMap<String, Tensor>) -> f32 {
    let scale = got
        .iter()
        .map(|(n, _)| max_abs(&want[n]))
        .fold(0f32, f32::max);
    assert!(scale > 0.0);
    got.iter()
        .map(|(n, g)| max_diff(g, &want[n]))
        .fold(0f32, f32::max)
        / scale
}

/// (b) Adapter gradients: against central differences and the dense training path over an f32
/// base, and through the quantized base against the dense path over the dequantized weights.
#[test]
fn adapter_gradients_match_finite_differences_and_the_dense_path() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let cfg = config(arch);
        let w = weights(&cfg, 11);
        let input = ids(&[seq(3, 12), seq(4, 12)]);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let r = rand_tensor(&mut rng, &[2, 12, VOCAB], 1.0, 0.0);

        // Over an f32 base: the chain rule through the training path, to rounding.
        let smooth = Model::from_tensors(cfg.clone(), w.clone(), lora_f32(lora_cfg())).unwrap();
        randomize_adapters(&smooth, 21);
        let got = adapter_grads(&smooth, &input, &r);
        let err = relative_error(&got, &grads_by_hand(&smooth, &input, &r));
        eprintln!("{arch:?} f32 base: adapter gradients vs dense path, relative error {err:e}");
        assert!(err < 1e-4, "{arch:?}: {err}");

        // Central differences on a few entries of every tenth adapter matrix (f64 loss).
        let h = 1e-2f32;
        let mut worst = 0f32;
        for (k, (name, var)) in smooth.trainable_vars().iter().enumerate().step_by(5) {
            let grad = &got[k].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let base = var.as_tensor().detach().copy().unwrap();
            let n = base.elem_count();
            for idx in [0, n / 2, n - 1] {
                let at = |delta: f32| {
                    let mut v = base.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    v[idx] += delta;
                    var.set(&Tensor::from_vec(v, base.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                    loss(&smooth, &input, &r).to_scalar::<f64>().unwrap()
                };
                let fd = ((at(h) - at(-h)) / (2.0 * h as f64)) as f32;
                var.set(&base).unwrap();
                let e = (fd - grad[idx]).abs() / grad[idx].abs().max(1.0);
                worst = worst.max(e);
                assert!(
                    e < 1e-2,
                    "{arch:?} {name}[{idx}]: fd {fd} vs autograd {}",
                    grad[idx]
                );
            }
        }
        eprintln!("{arch:?} f32 base: finite differences, worst relative error {worst:e}");

        // Through the quantized base (Q8_0 blocks, int8 activations forward): against the
        // dense path over the dequantized weights. The only difference is the forward pass's
        // activation rounding, which the backward pass treats as the identity. (Central
        // differences through the quantized forward itself measure nothing: the rounding is
        // piecewise constant in the activations, and along a random direction they gave 15 % to
        // 250 % errors depending on the step.)
        let quant = Model::from_tensors(cfg.clone(), w, LoadOptions::lora(lora_cfg())).unwrap();
        randomize_adapters(&quant, 21);
        let got = adapter_grads(&quant, &input, &r);
        let err = relative_error(&got, &grads_by_hand(&quant, &input, &r));
        eprintln!(
            "{arch:?} quantized base: adapter gradients vs dense path, relative error {err:e}"
        );
        assert!(err < 5e-2, "{arch:?}: {err}");
        assert!(err > 0.0, "the quantized path was not taken");
    }
}

/// (d) A PEFT adapter saved and loaded onto the same base gives the same values bit for bit,
/// with PEFT's names and config fields.
#[test]
fn peft_adapters_round_trip_exactly() {
    let cfg = config(Arch::Qwen2);
    let w = weights(&cfg, 13);
    let targets = Targets::from_names(&["q_proj", "k_proj", "down_proj"]).unwrap();
    let lcfg = LoraConfig {
        targets,
        use_rslora: true,
        dropout: 0.05,
        ..lora_cfg()
    };
    let model = Model::from_tensors(cfg.clone(), w.clone(), LoadOptions::lora(lcfg)).unwrap();
    assert_eq!(model.trainable_vars().len(), 2 * 3 * 2);
    randomize_adapters(&model, 17);
    let dir = tempfile::tempdir().unwrap();
    model.save_adapter(dir.path(), "tiny/qwen2").unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(ADAPTER_CONFIG)).unwrap())
            .unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["r"], 4);
    assert_eq!(json["lora_alpha"], 8);
    assert_eq!(json["lora_dropout"], 0.05);
    assert_eq!(json["use_rslora"], true);
    assert_eq!(json["bias"], "none");
    assert_eq!(json["task_type"], "CAUSAL_LM");
    assert_eq!(json["fan_in_fan_out"], false);
    assert_eq!(json["base_model_name_or_path"], "tiny/qwen2");
    assert_eq!(
        json["target_modules"],
        serde_json::json!(["q_proj", "k_proj", "down_proj"])
    );
    let file =
        candle_core::safetensors::load(dir.path().join(ADAPTER_WEIGHTS), &Device::Cpu).unwrap();
    assert_eq!(file.len(), 12);
    assert_eq!(
        file["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"].dims(),
        [32, 4]
    );

    // Onto a base with other adapters (every projection, another seed): replaced wholesale.
    let mut other = Model::from_tensors(
        cfg,
        w,
        LoadOptions::lora(LoraConfig {
            seed: 99,
            ..lora_cfg()
        }),
    )
    .unwrap();
    other.load_adapter(dir.path()).unwrap();
    assert_eq!(other.lora_config().unwrap().targets, targets);
    assert_eq!(other.lora_config().unwrap().scale(), lcfg.scale());
    let (a, b) = (weights_of(&model), weights_of(&other));
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert_eq!(bits(ta), bits(tb), "{na}");
    }
    let input = ids(&[seq(5, 20)]);
    let want = model.forward(&input, None).unwrap();
    assert_eq!(bits(&other.forward(&input, None).unwrap()), bits(&want));

    // A tensor medu1 would not apply is refused, not dropped.
    let mut extra = file.clone();
    extra.insert(
        "base_model.model.lm_head.lora_A.weight".into(),
        Tensor::zeros((4, 64), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&extra, dir.path().join(ADAPTER_WEIGHTS)).unwrap();
    assert!(other.load_adapter(dir.path()).is_err());
}

/// Writes `w` (Hugging Face names, half-split q/k rows) as a llama GGUF the way llama.cpp's
/// converter does: q/k rows permuted for the interleaved rope, matrices Q8_0, vectors f32.
fn write_llama_gguf(path: &Path, cfg: &ModelConfig, w: &HashMap<String, Tensor>) {
    let permute = |t: &Tensor, heads: usize| {
        let (rows, cols) = t.dims2().unwrap();
        t.reshape((heads, 2, rows / heads / 2, cols))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((rows, cols))
            .unwrap()
    };
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for (name, t) in w {
        let gguf = if let Some(rest) = name.strip_prefix("model.layers.") {
            let (l, tail) = rest.split_once('.').unwrap();
            let part = match tail {
                "input_layernorm.weight" => "attn_norm",
                "post_attention_layernorm.weight" => "ffn_norm",
                "self_attn.q_proj.weight" => "attn_q",
                "self_attn.k_proj.weight" => "attn_k",
                "self_attn.v_proj.weight" => "attn_v",
                "self_attn.o_proj.weight" => "attn_output",
                "mlp.gate_proj.weight" => "ffn_gate",
                "mlp.up_proj.weight" => "ffn_up",
                "mlp.down_proj.weight" => "ffn_down",
                other => panic!("{other}"),
            };
            format!("blk.{l}.{part}.weight")
        } else {
            match name.as_str() {
                "model.embed_tokens.weight" => "token_embd.weight".into(),
                "model.norm.weight" => "output_norm.weight".into(),
                "lm_head.weight" => "output.weight".into(),
                other => panic!("{other}"),
            }
        };
        let t = if gguf.ends_with("attn_q.weight") {
            permute(t, cfg.num_attention_heads)
        } else if gguf.ends_with("attn_k.weight") {
            permute(t, cfg.num_key_value_heads)
        } else {
            t.clone()
        };
        let dtype = if t.rank() == 2 {
            GgmlDType::Q8_0
        } else {
            GgmlDType::F32
        };
        tensors.push((gguf, QTensor::quantize(&t, dtype).unwrap()));
    }
    use gguf_file::Value;
    let u = |v: usize| Value::U32(v as u32);
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", u(cfg.hidden_size)),
        ("llama.feed_forward_length", u(cfg.intermediate_size)),
        ("llama.block_count", u(cfg.num_hidden_layers)),
        ("llama.attention.head_count", u(cfg.num_attention_heads)),
        ("llama.attention.head_count_kv", u(cfg.num_key_value_heads)),
        ("llama.context_length", u(cfg.max_position_embeddings)),
        ("llama.rope.freq_base", Value::F32(cfg.rope_theta as f32)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(cfg.rms_norm_eps as f32),
        ),
    ];
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

/// (d) over llama.cpp's layout: an adapter trained on an interleaved-rope GGUF is saved with
/// B's q/k rows in Hugging Face's order, so it loads back exactly onto the GGUF and applies to
/// the same weights in Hugging Face's layout with the same logits; merging unpermutes too.
#[test]
fn adapters_of_an_interleaved_gguf_base_use_hugging_face_row_order() {
    let cfg = config(Arch::Llama);
    let w = weights(&cfg, 19);
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tiny.gguf");
    write_llama_gguf(&gguf, &cfg, &w);
    let model = Model::from_gguf(&gguf, LoadOptions::lora(lora_cfg())).unwrap();
    assert_eq!(model.config().rope_layout, RopeLayout::Interleaved);
    randomize_adapters(&model, 23);
    let out = dir.path().join("adapter");
    model.save_adapter(&out, "tiny.gguf").unwrap();

    // Back onto the GGUF: exact.
    let mut back = Model::from_gguf(&gguf, LoadOptions::lora(LoraConfig::default())).unwrap();
    back.load_adapter(&out).unwrap();
    for ((na, ta), (nb, tb)) in weights_of(&model).iter().zip(&weights_of(&back)) {
        assert_eq!(na, nb);
        assert_eq!(bits(ta), bits(tb), "{na}");
    }
    let input = ids(&[seq(6, 20)]);
    let want = model.forward(&input, None).unwrap();
    assert_eq!(bits(&back.forward(&input, None).unwrap()), bits(&want));

    // The file's B rows are the model's, unpermuted: q/k differ, v does not.
    let file = candle_core::safetensors::load(out.join(ADAPTER_WEIGHTS), &Device::Cpu).unwrap();
    let vars: HashMap<String, Tensor> = weights_of(&model).into_iter().collect();
    for (p, permuted) in [
        (Projection::Q, true),
        (Projection::K, true),
        (Projection::V, false),
    ] {
        let n = adapter_name(0, p, 'B');
        assert_eq!(bits(&file[&n]) != bits(&vars[&n]), permuted, "{n}");
    }

    // Onto the same (dequantized) weights in Hugging Face's half-split layout.
    let (hf_cfg, hf_weights) = model.without_adapters().merged_hf_tensors().unwrap();
    assert_eq!(hf_cfg.rope_layout, RopeLayout::HalfSplit);
    let mut hf = Model::from_tensors(hf_cfg, hf_weights, lora_f32(LoraConfig::default())).unwrap();
    hf.load_adapter(&out).unwrap();
    let got = hf.forward(&input, None).unwrap();
    let scale = max_abs(&want);
    // The GGUF model quantizes activations; the f32 one does not.
    let err = max_diff(&got, &want);
    eprintln!("interleaved GGUF vs half-split f32 base, same adapter: {err:e} (scale {scale})");
    assert!(err < 3e-2 * scale, "{err} vs {scale}");

    // Merged: the same function in Hugging Face's layout.
    let merged = model
        .merge(LoadOptions::infer_with(InferQuant::F32))
        .unwrap();
    let err = max_diff(&merged.forward(&input, None).unwrap(), &got);
    eprintln!("merged interleaved adapter vs f32 base + adapter: {err:e}");
    assert!(err < 1e-4 * scale, "{err}");
}

/// (e) `W + s B A` gives the logits of the base plus its adapters: to f32 rounding over an f32
/// base, to the activation rounding of the int8 kernels over a quantized one.
#[test]
fn merged_weights_give_the_adapted_logits() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let cfg = config(arch);
        let w = weights(&cfg, 29);
        let input = ids(&[seq(8, 16), seq(9, 16)]);
        for (opts, tol) in [
            (lora_f32(lora_cfg()), 1e-5),
            (LoadOptions::lora(lora_cfg()), 3e-2),
        ] {
            let model = Model::from_tensors(cfg.clone(), w.clone(), opts).unwrap();
            randomize_adapters(&model, 31);
            let want = model.forward(&input, None).unwrap();
            let merged = model
                .merge(LoadOptions::infer_with(InferQuant::F32))
                .unwrap();
            let got = merged.forward(&input, None).unwrap();
            let (err, scale) = (max_diff(&got, &want), max_abs(&want));
            eprintln!(
                "{arch:?} {:?}: merged vs adapted logits {err:e} (scale {scale})",
                opts.quant
            );
            assert!(err <= tol * scale, "{arch:?} {:?}: {err}", opts.quant);
            // Merging zero adapters gives the base.
            let base = model
                .without_adapters()
                .merge(LoadOptions::train())
                .unwrap();
            let plain = model.without_adapters().forward(&input, None).unwrap();
            let err = max_diff(&base.forward(&input, None).unwrap(), &plain);
            assert!(err <= tol * scale, "{arch:?} base: {err}");
        }
    }
}

/// (f) The LoRA model holds the base matrices quantized only: no dense matrix, adapters as the
/// only trainable tensors, against four bytes a weight in full fine-tuning.
#[test]
fn a_lora_model_holds_no_dense_copy_of_the_base() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let cfg = config(arch);
        let w = weights(&cfg, 37);
        let matrix_values: usize = (0..cfg.num_hidden_layers)
            .flat_map(|l| matrices(&cfg, l))
            .map(|(_, [o, i])| o * i)
            .sum::<usize>()
            + if cfg.tie_word_embeddings {
                0
            } else {
                VOCAB * 64
            };
        let lora =
            Model::from_tensors(cfg.clone(), w.clone(), LoadOptions::lora(lora_cfg())).unwrap();
        let m = lora.memory();
        let adapter_values: usize = (0..cfg.num_hidden_layers)
            .flat_map(|l| matrices(&cfg, l))
            .map(|(_, [o, i])| 4 * (o + i))
            .sum();
        assert_eq!(m.dense_matrices, 0, "{arch:?}: {m:?}");
        assert_eq!(m.adapters, 4 * adapter_values, "{arch:?}");
        // Q8_0 holds 34 bytes per 32 weights (the packed layout the same, split differently),
        // the tied head too.
        let head = if cfg.tie_word_embeddings {
            VOCAB * 64
        } else {
            0
        };
        assert_eq!(m.quantized, (matrix_values + head) / 32 * 34, "{arch:?}");
        let adapter_bytes: usize = lora
            .trainable_vars()
            .iter()
            .map(|(_, v)| v.elem_count() * 4)
            .sum();
        assert_eq!(adapter_bytes, m.adapters);

        let full = Model::from_tensors(cfg, w, LoadOptions::train()).unwrap();
        let f = full.memory();
        assert_eq!(f.quantized, 0);
        assert_eq!(f.dense_matrices, 4 * matrix_values, "{arch:?}");
        eprintln!("{arch:?}: LoRA {m:?} vs full {f:?}");
    }
}

#[test]
fn lora_settings_deserialize_with_defaults() {
    let c: LoraConfig =
        serde_json::from_str(r#"{"rank": 8, "targets": ["q_proj", "self_attn.v_proj"]}"#).unwrap();
    assert_eq!(c.rank, 8);
    assert_eq!(c.alpha, 32.0);
    assert_eq!(
        c.targets.iter().collect::<Vec<_>>(),
        [Projection::Q, Projection::V]
    );
    assert!(serde_json::from_str::<LoraConfig>(r#"{"targets": ["lm_head"]}"#).is_err());
    assert!(serde_json::from_str::<LoraConfig>(r#"{"rnk": 8}"#).is_err());
    let mismatched = LoadOptions {
        lora: Some(LoraConfig::default()),
        ..LoadOptions::train()
    };
    let cfg = config(Arch::Llama);
    assert!(Model::from_tensors(cfg.clone(), weights(&cfg, 1), mismatched).is_err());
}

/// Activation checkpointing recomputes each layer in the backward pass: the logits keep their
/// bits and every trainable weight's gradient equals the plain graph's (up to the order in
/// which a weight's gradient is summed), for a LoRA model over a Q8_0 base (plain and
/// shared-prefix passes, adapter dropout on) and for full fine-tuning.
#[test]
fn checkpointed_layers_give_the_plain_graphs_logits_and_gradients() {
    let cfg = config(Arch::Qwen2);
    let w = weights(&cfg, 11);
    let lora = LoraConfig {
        dropout: 0.2,
        ..lora_cfg()
    };
    let q8 = LoadOptions {
        quant: InferQuant::Q8_0,
        ..LoadOptions::lora(lora)
    };
    let prompt = ids(&[seq(31, 7)]);
    let responses = ids(&[seq(32, 5), seq(33, 5), seq(34, 5)]);
    let input = ids(&[seq(35, 9), seq(36, 9)]);
    for opts in [q8, LoadOptions::train()] {
        let plain = Model::from_tensors(cfg.clone(), w.clone(), opts).unwrap();
        randomize_adapters_if_lora(&plain);
        let plain = plain.with_dropout_seed(Some(5));
        let mut ckpt = plain.clone();
        ckpt.set_activation_checkpointing(true);
        assert!(ckpt.activation_checkpointing() && !plain.activation_checkpointing());
        let passes: [&dyn Fn(&Model) -> Tensor; 2] =
            [&|m| m.forward(&input, None).unwrap(), &|m| {
                m.forward_shared_prefix(&prompt, &responses).unwrap()
            }];
        for pass in passes {
            let (a, b) = (pass(&plain), pass(&ckpt));
            assert_eq!(bits(&a), bits(&b), "{:?}: logits", opts.mode);
            let r = Tensor::randn(0f32, 1.0, a.shape(), &Device::Cpu).unwrap();
            let ga = plain
                .backward(&(a * &r).unwrap().sum_all().unwrap())
                .unwrap();
            let gb = ckpt
                .backward(&(b * &r).unwrap().sum_all().unwrap())
                .unwrap();
            let mut checked = 0;
            for (n, v) in plain.trainable_vars() {
                let (x, y) = (ga.get(v), gb.get(v));
                let (Some(x), Some(y)) = (x, y) else {
                    assert!(
                        x.is_none() && y.is_none(),
                        "{n}: a gradient on one side only"
                    );
                    continue;
                };
                let err = max_diff(x, y);
                assert!(
                    err <= 1e-5 * max_abs(x).max(1e-6),
                    "{n}: {err} vs {}",
                    max_abs(x)
                );
                checked += 1;
            }
            // Every trainable weight has a gradient: adapters, or every weight when fully
            // fine-tuned.
            let all = plain.trainable_vars().len();
            assert!(
                all >= 2 * 7 && checked == all,
                "{:?}: {checked} of {all}",
                opts.mode
            );
        }
    }
}

fn randomize_adapters_if_lora(model: &Model) {
    if model.mode() == Mode::Lora {
        randomize_adapters(model, 9);
    }
}
