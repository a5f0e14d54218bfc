//! Tiny random Llama and Qwen2 checkpoints written by the test as Hugging Face folders: loading,
//! deterministic generation, gradients through every weight, KV cache vs full recomputation,
//! left-padded batches vs single sequences, and saving back to safetensors.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use medu1_model::{
    Arch, InferQuant, KvCache, LoadOptions, Mode, Model, ModelConfig, RopeLayout, SamplingParams,
    Tokenizer, generate,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 64;

fn config(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: VOCAB,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 256,
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

fn weights(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (d, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let mut w = HashMap::new();
    let mut put = |name: String, shape: &[usize], scale: f32, offset: f32| {
        w.insert(name, rand_tensor(&mut rng, shape, scale, offset));
    };
    // Tied embeddings make a token predict itself strongly; a smaller scale keeps sampling varied.
    let embed_scale = if cfg.tie_word_embeddings { 0.3 } else { 1.0 };
    put(
        "model.embed_tokens.weight".into(),
        &[VOCAB, d],
        embed_scale,
        0.0,
    );
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), &[d], 0.2, 1.0);
        put(
            format!("{p}.post_attention_layernorm.weight"),
            &[d],
            0.2,
            1.0,
        );
        put(
            format!("{p}.self_attn.q_proj.weight"),
            &[nh * hd, d],
            0.4,
            0.0,
        );
        put(
            format!("{p}.self_attn.k_proj.weight"),
            &[nkv * hd, d],
            0.4,
            0.0,
        );
        put(
            format!("{p}.self_attn.v_proj.weight"),
            &[nkv * hd, d],
            0.4,
            0.0,
        );
        put(
            format!("{p}.self_attn.o_proj.weight"),
            &[d, nh * hd],
            0.3,
            0.0,
        );
        put(format!("{p}.mlp.gate_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.up_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.down_proj.weight"), &[d, i], 0.3, 0.0);
        if cfg.attention_bias {
            put(format!("{p}.self_attn.q_proj.bias"), &[nh * hd], 0.2, 0.0);
            put(format!("{p}.self_attn.k_proj.bias"), &[nkv * hd], 0.2, 0.0);
            put(format!("{p}.self_attn.v_proj.bias"), &[nkv * hd], 0.2, 0.0);
        }
    }
    put("model.norm.weight".into(), &[d], 0.2, 1.0);
    if !cfg.tie_word_embeddings {
        put("lm_head.weight".into(), &[VOCAB, d], 1.0, 0.0);
    }
    w
}

/// A word-level tokenizer over `t0 .. t63` (t1 = bos, t2 = eos), saved as tokenizer.json.
fn write_tokenizer(dir: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    let vocab: HashMap<String, u32> = (0..VOCAB as u32).map(|i| (format!("t{i}"), i)).collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("t0".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    tok.save(dir.join("tokenizer.json"), false).unwrap();
}

fn write_checkpoint(dir: &Path, arch: Arch) -> ModelConfig {
    let cfg = config(arch);
    let w = weights(&cfg, 42);
    // Store bf16 for qwen2 to exercise the dtype conversion (values rounded once, then fixed).
    let w: HashMap<String, Tensor> = if arch == Arch::Qwen2 {
        w.into_iter()
            .map(|(k, t)| (k, t.to_dtype(DType::BF16).unwrap()))
            .collect()
    } else {
        w
    };
    candle_core::safetensors::save(&w, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&cfg.to_hf_json()).unwrap(),
    )
    .unwrap();
    write_tokenizer(dir);
    cfg
}

fn ids(v: &[u32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), (1, v.len()), &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn infer_f32() -> LoadOptions {
    LoadOptions {
        mode: Mode::Infer,
        quant: InferQuant::F32,
        lora: None,
        device: Default::default(),
    }
}

const PROMPT_A: [u32; 7] = [1, 5, 9, 17, 33, 8, 4];
const PROMPT_B: [u32; 3] = [1, 40, 22];

#[test]
fn tiny_models_load_and_generate_deterministically() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_checkpoint(dir.path(), arch);
        for opts in [infer_f32(), LoadOptions::infer(), LoadOptions::train()] {
            let (model, tok) = medu1_model::load(dir.path(), opts).unwrap();
            assert_eq!(model.config(), &cfg);
            assert_eq!(tok.encode("t1 t5 t9").unwrap(), vec![1, 5, 9]);
            let params = SamplingParams {
                temperature: 0.9,
                top_p: 0.9,
                top_k: 20,
                seed: 7,
                max_new_tokens: 12,
                stop_token_ids: vec![],
                stop_strings: vec![],
            };
            let prompts = [PROMPT_A.to_vec(), PROMPT_B.to_vec()];
            let a = generate(&model, &tok, &prompts, 3, &params, &mut |_| {}).unwrap();
            let b = generate(&model, &tok, &prompts, 3, &params, &mut |_| {}).unwrap();
            assert_eq!(a.completions.len(), 2);
            for (pa, pb) in a.completions.iter().zip(&b.completions) {
                assert_eq!(pa.len(), 3);
                for (ca, cb) in pa.iter().zip(pb) {
                    assert_eq!(ca.token_ids, cb.token_ids, "{arch:?} {opts:?}");
                    assert_eq!(ca.token_ids.len(), 12);
                    assert_eq!(ca.logprobs.len(), 12);
                    assert!(ca.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
                }
            }
            // Samples of one prompt differ from each other (independent streams).
            let s = &a.completions[0];
            assert!(s[0].token_ids != s[1].token_ids || s[1].token_ids != s[2].token_ids);
        }
    }
}

#[test]
fn every_trainable_weight_gets_a_gradient() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_checkpoint(dir.path(), arch);
        let model = Model::from_hf_dir(dir.path(), LoadOptions::train()).unwrap();
        let n_expected = 1
            + cfg.num_hidden_layers * (9 + if cfg.attention_bias { 3 } else { 0 })
            + 1
            + usize::from(!cfg.tie_word_embeddings);
        assert_eq!(model.trainable_vars().len(), n_expected);
        // Left-padded batch: row 1 has two pads.
        let input = Tensor::new(
            &[[1u32, 5, 9, 17, 33, 8], [0, 0, 1, 40, 22, 7]],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[1u8, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], &Device::Cpu).unwrap();
        let lp = model.token_logprobs(&input, Some(&mask), 1.0).unwrap();
        let m = mask.narrow(1, 1, 5).unwrap().to_dtype(DType::F32).unwrap();
        let loss = (lp * m).unwrap().sum_all().unwrap().neg().unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in model.trainable_vars() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: no gradient for {name}"));
            let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                v.iter().all(|x| x.is_finite()),
                "{name}: non-finite gradient"
            );
            assert!(v.iter().any(|x| *x != 0.0), "{name}: zero gradient");
        }
    }
}

#[test]
fn forward_span_equals_the_same_columns_of_a_full_forward() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), arch);
        for opts in [LoadOptions::train(), infer_f32()] {
            let model = Model::from_hf_dir(dir.path(), opts).unwrap();
            let input = Tensor::new(
                &[[1u32, 5, 9, 17, 33, 8], [0, 0, 1, 40, 22, 7]],
                &Device::Cpu,
            )
            .unwrap();
            let mask =
                Tensor::new(&[[1u8, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], &Device::Cpu).unwrap();
            let full = model.forward(&input, Some(&mask)).unwrap();
            let span = model.forward_span(&input, Some(&mask), 3, 2).unwrap();
            assert_eq!(span.dims(), &[2, 2, full.dims()[2]]);
            let d = max_diff(&span, &full.narrow(1, 3, 2).unwrap());
            assert!(d < 1e-5, "{arch:?}: span differs by {d}");
            assert!(model.forward_span(&input, Some(&mask), 5, 2).is_err());
        }
    }
}

#[test]
fn a_shared_prompt_gives_the_values_and_gradients_of_separate_sequences() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), arch);
        let model = Model::from_hf_dir(dir.path(), LoadOptions::train()).unwrap();
        let prompt = [1u32, 5, 9, 17];
        // Right-padded responses of different lengths.
        let responses = [[33u32, 8, 12], [40, 22, 0]];
        let lens = [3usize, 2];
        let shared = model
            .forward_shared_prefix(
                &ids(&prompt),
                &Tensor::new(&responses, &Device::Cpu).unwrap(),
            )
            .unwrap();
        assert_eq!(shared.dims()[..2], [2, 3]);
        let loss_of = |logits: &Tensor, row: usize, len: usize| {
            let lsm = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
            let mut terms = Vec::new();
            for (j, &t) in responses[row].iter().enumerate().take(len) {
                terms.push(lsm.get(j).unwrap().get(t as usize).unwrap());
            }
            Tensor::stack(&terms, 0).unwrap().sum_all().unwrap()
        };
        let mut separate_loss = Vec::new();
        for (row, &len) in lens.iter().enumerate() {
            let mut seq = prompt.to_vec();
            seq.extend_from_slice(&responses[row][..len]);
            let full = model.forward(&ids(&seq), None).unwrap().squeeze(0).unwrap();
            let cols = full.narrow(0, prompt.len() - 1, len).unwrap();
            let mine = shared.get(row).unwrap().narrow(0, 0, len).unwrap();
            let d = max_diff(&cols, &mine);
            assert!(d < 1e-4, "{arch:?} row {row}: logits differ by {d}");
            separate_loss.push(loss_of(&cols, row, len));
        }
        let separate = (&separate_loss[0] + &separate_loss[1]).unwrap();
        let joint = (loss_of(&shared.get(0).unwrap(), 0, lens[0])
            + loss_of(&shared.get(1).unwrap(), 1, lens[1]))
        .unwrap();
        let ga = separate.backward().unwrap();
        let gb = joint.backward().unwrap();
        for (name, var) in model.trainable_vars() {
            let a = ga.get(var.as_tensor()).unwrap();
            let b = gb.get(var.as_tensor()).unwrap();
            let scale = a
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let d = max_diff(a, b);
            assert!(
                d <= 1e-4 * scale.max(1e-3),
                "{arch:?} {name}: gradients differ by {d} (scale {scale})"
            );
        }
    }
}

#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    // f32 weights, and the default Q8_0 weights (the packed kernels where the CPU has them:
    // they quantize each activation row on its own, so a cached step sees the same numbers).
    for (arch, opts) in [Arch::Llama, Arch::Qwen2]
        .into_iter()
        .flat_map(|a| [(a, infer_f32()), (a, LoadOptions::infer())])
    {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), arch);
        let (model, tok) = medu1_model::load(dir.path(), opts).unwrap();
        let seq: Vec<u32> = vec![1, 5, 9, 17, 33, 8, 4, 60, 12, 3, 44, 21];
        let full = model.forward(&ids(&seq), None).unwrap().squeeze(0).unwrap();
        let mut cache = KvCache::new(model.config(), 1, 32, model.device()).unwrap();
        let pre = model
            .forward_cached(&ids(&seq[..5]), &[vec![true; 5]], &mut cache, false)
            .unwrap()
            .squeeze(0)
            .unwrap();
        assert!(max_diff(&pre, &full.narrow(0, 0, 5).unwrap()) < 1e-4);
        for i in 5..seq.len() {
            let step = model
                .forward_cached(&ids(&seq[i..=i]), &[vec![true]], &mut cache, true)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let d = max_diff(&step, &full.get(i).unwrap());
            assert!(d < 1e-4, "{arch:?} position {i}: {d}");
        }
        // Greedy tokens from the cached generator equal argmax of full recomputation.
        let g = generate(
            &model,
            &tok,
            &[PROMPT_A.to_vec()],
            1,
            &SamplingParams::greedy(10),
            &mut |_| {},
        )
        .unwrap();
        let out = &g.completions[0][0].token_ids;
        let mut all = PROMPT_A.to_vec();
        all.extend_from_slice(out);
        let logits = model.forward(&ids(&all), None).unwrap();
        let am = logits.argmax(D::Minus1).unwrap().to_vec2::<u32>().unwrap();
        let expect: Vec<u32> = am[0][PROMPT_A.len() - 1..all.len() - 1].to_vec();
        assert_eq!(out, &expect, "{arch:?}");
        // Train-mode (composite ops) logits agree with the fused inference path.
        let train = Model::from_hf_dir(dir.path(), LoadOptions::train()).unwrap();
        let lt = train.forward(&ids(&all), None).unwrap();
        let tol = if opts.quant == InferQuant::F32 {
            1e-4
        } else {
            0.5
        };
        let d = max_diff(&lt, &logits);
        assert!(d < tol, "{arch:?} {:?}: {d}", opts.quant);
    }
}

#[test]
fn left_padded_batches_equal_single_sequences() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), arch);
        let (model, tok) = medu1_model::load(dir.path(), infer_f32()).unwrap();
        let mut params = SamplingParams::greedy(9);
        params.stop_token_ids = vec![2];
        let prompts = [PROMPT_A.to_vec(), PROMPT_B.to_vec(), vec![1, 7]];
        let batch = generate(&model, &tok, &prompts, 1, &params, &mut |_| {}).unwrap();
        for (p, c) in prompts.iter().zip(&batch.completions) {
            let single = generate(
                &model,
                &tok,
                std::slice::from_ref(p),
                1,
                &params,
                &mut |_| {},
            )
            .unwrap();
            let s = &single.completions[0][0];
            assert_eq!(c[0].token_ids, s.token_ids, "{arch:?}");
            for (a, b) in c[0].logprobs.iter().zip(&s.logprobs) {
                assert!((a - b).abs() < 1e-4);
            }
        }
        // Seeded sampling does not depend on batching either.
        params.temperature = 1.0;
        params.seed = 3;
        let batch = generate(&model, &tok, &prompts, 2, &params, &mut |_| {}).unwrap();
        // (streams are seeded per prompt index and sample index)
        let single = generate(&model, &tok, &prompts[..2], 2, &params, &mut |_| {}).unwrap();
        assert_eq!(
            batch.completions[1][1].token_ids,
            single.completions[1][1].token_ids
        );
        // Log-probs of a padded row (train path) equal those of the unpadded sequence.
        let train = Model::from_hf_dir(dir.path(), LoadOptions::train()).unwrap();
        let padded = Tensor::new(
            &[[0u32, 0, 0, 0, 1, 40, 22], [1, 5, 9, 17, 33, 8, 4]],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[0f32, 0., 0., 0., 1., 1., 1.], [1.; 7]], &Device::Cpu).unwrap();
        let lp = train.token_logprobs(&padded, Some(&mask), 1.0).unwrap();
        let lone = train.token_logprobs(&ids(&PROMPT_B), None, 1.0).unwrap();
        let d = max_diff(
            &lp.get(0).unwrap().narrow(0, 4, 2).unwrap(),
            &lone.get(0).unwrap(),
        );
        assert!(d < 1e-4, "{arch:?}: {d}");
        // Right padding works too.
        let right = Tensor::new(&[[1u32, 40, 22, 0, 0]], &Device::Cpu).unwrap();
        let rmask = Tensor::new(&[[1u8, 1, 1, 0, 0]], &Device::Cpu).unwrap();
        let lr = train.token_logprobs(&right, Some(&rmask), 1.0).unwrap();
        let d = max_diff(
            &lr.get(0).unwrap().narrow(0, 0, 2).unwrap(),
            &lone.get(0).unwrap(),
        );
        assert!(d < 1e-4, "{arch:?} right padding: {d}");
    }
}

#[test]
fn stop_strings_and_stop_ids_end_sequences() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), Arch::Llama);
    let (model, tok) = medu1_model::load(dir.path(), infer_f32()).unwrap();
    let free = generate(
        &model,
        &tok,
        &[PROMPT_A.to_vec()],
        1,
        &SamplingParams::greedy(8),
        &mut |_| {},
    )
    .unwrap();
    let c = &free.completions[0][0];
    assert_eq!(c.finish, medu1_core::FinishReason::Length);
    // Stop on the third generated token, as an id and as a string.
    let third = c.token_ids[2];
    let mut p = SamplingParams::greedy(8);
    p.stop_token_ids = vec![third];
    let g = generate(&model, &tok, &[PROMPT_A.to_vec()], 1, &p, &mut |_| {}).unwrap();
    let s = &g.completions[0][0];
    assert_eq!(s.finish, medu1_core::FinishReason::Stop);
    assert_eq!(s.token_ids.last(), Some(&third));
    assert!(s.token_ids.len() <= 3);
    let word = format!("t{third}");
    let mut p = SamplingParams::greedy(8);
    p.stop_strings = vec![word.clone()];
    let g = generate(&model, &tok, &[PROMPT_A.to_vec()], 1, &p, &mut |_| {}).unwrap();
    let s = &g.completions[0][0];
    assert_eq!(s.finish, medu1_core::FinishReason::Stop);
    assert!(!s.text.contains(&word), "{:?}", s.text);
}

#[test]
fn save_round_trips_and_unpermutes_interleaved_rope() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_checkpoint(dir.path(), Arch::Llama);
    let hf = Model::from_hf_dir(dir.path(), LoadOptions::train()).unwrap();
    let input = ids(&PROMPT_A);
    let want = hf.forward(&input, None).unwrap();
    // The same weights in llama.cpp's layout: q/k rows permuted, interleaved rope.
    let mut w = weights(&cfg, 42);
    for (name, t) in w.iter_mut() {
        let heads = if name.contains("q_proj") {
            cfg.num_attention_heads
        } else if name.contains("k_proj") {
            cfg.num_key_value_heads
        } else {
            continue;
        };
        let (rows, cols) = t.dims2().unwrap();
        *t = t
            .reshape((heads, 2, rows / heads / 2, cols))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((rows, cols))
            .unwrap();
    }
    let mut icfg = cfg.clone();
    icfg.rope_layout = RopeLayout::Interleaved;
    let inter = Model::from_tensors(icfg, w, LoadOptions::train()).unwrap();
    assert!(max_diff(&inter.forward(&input, None).unwrap(), &want) < 1e-4);
    // Saved as HF, it loads back (half-split) with the same logits.
    let out = tempfile::tempdir().unwrap();
    inter.save_hf(out.path()).unwrap();
    let back = Model::from_hf_dir(out.path(), LoadOptions::train()).unwrap();
    assert_eq!(back.config().rope_layout, RopeLayout::HalfSplit);
    assert!(max_diff(&back.forward(&input, None).unwrap(), &want) < 1e-4);
    let _ = Tokenizer::from_hf_dir(dir.path()).unwrap();
}
