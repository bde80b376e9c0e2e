//! Our Llama forward (dequantized f32 weights, all positions, padding mask) against candle's
//! `quantized_llama` on the same GGUF file: SmolLM2-135M-Instruct from `models/smollm2-135m`
//! (fetched by `scripts/setup-models.sh`).

use std::path::PathBuf;

use bmp_encoder::llama::LlamaModel;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor, D};
use candle_transformers::models::quantized_llama::ModelWeights;

mod common;

fn gguf() -> Option<PathBuf> {
    common::model_path("smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf", "")
}

/// The token strings of a GGUF file's vocabulary, by id.
fn vocab_of(content: &gguf_file::Content) -> Vec<String> {
    content.metadata["tokenizer.ggml.tokens"]
        .to_vec()
        .unwrap()
        .iter()
        .map(|v| v.to_string().unwrap().clone())
        .collect()
}

/// Token ids of whole-token strings of the GGUF vocabulary (GPT-2 style: `Ġ` is a space).
fn ids(vocab: &[String], tokens: &[&str]) -> Vec<u32> {
    tokens
        .iter()
        .map(|t| {
            vocab
                .iter()
                .position(|v| v == t)
                .unwrap_or_else(|| panic!("{t:?} is not a token of the vocabulary"))
                as u32
        })
        .collect()
}

#[test]
fn next_token_predictions_match_quantized_llama_and_padding_changes_nothing() {
    let Some(path) = gguf() else { return };
    let device = Device::Cpu;
    let ours = LlamaModel::from_gguf(&path, None, &device).unwrap();
    assert_eq!(ours.config().num_layers, 30);
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let vocab = vocab_of(&content);
    let mut reference = ModelWeights::from_gguf(content, &mut file, &device).unwrap();
    let prompts = [
        ids(&vocab, &["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"]),
        ids(
            &vocab,
            &["One", ",", "Ġtwo", ",", "Ġthree", ",", "Ġfour", ","],
        ),
        ids(&vocab, &["The", "Ġquick", "Ġbrown"]),
    ];
    let max_len = prompts.iter().map(Vec::len).max().unwrap();
    let (mut padded, mut mask) = (Vec::new(), Vec::new());
    for p in &prompts {
        padded.extend(p.iter().copied());
        padded.extend(std::iter::repeat_n(2u32, max_len - p.len()));
        mask.extend(std::iter::repeat_n(1u8, p.len()));
        mask.extend(std::iter::repeat_n(0u8, max_len - p.len()));
    }
    let batch_ids = Tensor::from_vec(padded, (prompts.len(), max_len), &device).unwrap();
    let batch_mask = Tensor::from_vec(mask, (prompts.len(), max_len), &device).unwrap();
    let batch_logits = ours
        .logits(&ours.hidden_states(&batch_ids, &batch_mask).unwrap())
        .unwrap();
    for (row, p) in prompts.iter().enumerate() {
        let input = Tensor::new(p.as_slice(), &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let theirs = reference.forward(&input, 0).unwrap().squeeze(0).unwrap();
        let alone_mask = Tensor::ones((1, p.len()), candle_core::DType::U8, &device).unwrap();
        let alone = ours
            .logits(&ours.hidden_states(&input, &alone_mask).unwrap())
            .unwrap()
            .get(0)
            .unwrap()
            .get(p.len() - 1)
            .unwrap();
        let batched = batch_logits.get(row).unwrap().get(p.len() - 1).unwrap();
        let want = theirs
            .argmax(D::Minus1)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
        let got = alone.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
        assert_eq!(
            got, want,
            "prompt {row}: ours predicts {:?}, quantized_llama {:?}",
            vocab[got as usize], vocab[want as usize]
        );
        eprintln!("prompt {row}: next token {:?}", vocab[got as usize]);
        let diff = (alone - batched)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-3, "prompt {row}: padding moved a logit by {diff}");
    }
}

#[test]
fn a_layer_cut_loads_only_the_first_blocks() {
    let Some(path) = gguf() else { return };
    let cut = LlamaModel::from_gguf(&path, Some(8), &Device::Cpu).unwrap();
    assert_eq!(cut.config().num_layers, 8);
    let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 3), candle_core::DType::U8, &Device::Cpu).unwrap();
    assert_eq!(cut.forward_all(&ids, &mask).unwrap().len(), 9);
    assert!(LlamaModel::from_gguf(&path, Some(31), &Device::Cpu).is_err());
}

/// The GGUF file's contents.
fn read_gguf(path: &std::path::Path) -> gguf_file::Content {
    gguf_file::Content::read(&mut std::fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn a_model_written_back_as_gguf_keeps_the_source_types_size_and_tokenizer() {
    use bmp_encoder::gaprune::{magnitude_scores, prune_lowest};
    let Some(path) = gguf() else { return };
    let device = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let source = read_gguf(&path);

    // Unpruned and whole: the same tensors at the same types, no larger than the source.
    let whole = LlamaModel::from_gguf(&path, None, &device).unwrap();
    let copy = dir.path().join("copy.gguf");
    whole.save_gguf(&copy).unwrap();
    drop(whole);
    let written = read_gguf(&copy);
    assert_eq!(written.tensor_infos.len(), source.tensor_infos.len());
    for (name, info) in &source.tensor_infos {
        let got = &written.tensor_infos[name];
        assert_eq!(
            (got.ggml_dtype, got.shape.dims()),
            (info.ggml_dtype, info.shape.dims()),
            "{name}"
        );
    }
    assert_eq!(vocab_of(&written), vocab_of(&source));
    let bytes = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    assert!(
        bytes(&copy) <= bytes(&path),
        "{} > {}",
        bytes(&copy),
        bytes(&path)
    );

    // Cut to 3 layers and half the MLP weights zeroed: the blocks cut away are left out, and the
    // model read back computes what the pruned model in memory computes, up to quantization.
    let mut pruned = LlamaModel::from_gguf(&path, Some(3), &device).unwrap();
    let vars = pruned.make_trainable().unwrap();
    let scores = magnitude_scores(&vars).unwrap();
    prune_lowest(&vars, &scores, 0.5).unwrap();
    let out = dir.path().join("pruned.gguf");
    pruned.save_gguf(&out).unwrap();
    let written = read_gguf(&out);
    assert_eq!(written.metadata["llama.block_count"].to_u32().unwrap(), 3);
    assert!(written
        .tensor_infos
        .keys()
        .all(|n| !n.starts_with("blk.3.")));
    let again = LlamaModel::from_gguf(&out, None, &device).unwrap();
    assert_eq!(again.config().num_layers, 3);
    let ids = Tensor::new(&[[504u32, 3458, 282, 4649, 314, 253, 1345]], &device).unwrap();
    let mask = Tensor::ones((1, 7), candle_core::DType::U8, &device).unwrap();
    let a = pruned
        .hidden_states(&ids, &mask)
        .unwrap()
        .flatten_all()
        .unwrap();
    let b = again
        .hidden_states(&ids, &mask)
        .unwrap()
        .flatten_all()
        .unwrap();
    let dot = |x: &Tensor, y: &Tensor| {
        (x * y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let cosine = dot(&a, &b) / (dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
    assert!(cosine > 0.99, "cosine {cosine}");

    // The zeroed weights come back near zero: within the quantization step of their block.
    for (name, var) in vars.iter().filter(|(n, _)| n.contains(".mlp.")) {
        let l: usize = name.split('.').nth(2).unwrap().parse().unwrap();
        let proj = name.split('.').nth(4).unwrap().trim_end_matches("_proj");
        let gguf_name = format!("blk.{l}.ffn_{proj}.weight");
        let back = written
            .tensor(&mut std::fs::File::open(&out).unwrap(), &gguf_name, &device)
            .unwrap()
            .dequantize(&device)
            .unwrap();
        let zeroed = var
            .as_tensor()
            .eq(0f32)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        let kept = (1.0 - &zeroed).unwrap();
        let mean_abs = |m: &Tensor| {
            (back.abs().unwrap() * m)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                / m.sum_all().unwrap().to_scalar::<f32>().unwrap()
        };
        let (at_zero, at_kept) = (mean_abs(&zeroed), mean_abs(&kept));
        assert!(
            at_zero < 0.25 * at_kept,
            "{gguf_name}: {at_zero} vs {at_kept}"
        );
    }
}

#[test]
fn the_gguf_tokenizer_splits_as_the_vocabulary_expects() {
    let Some(path) = gguf() else { return };
    let tokenizer = bmp_encoder::gguf_tokenizer::gguf_tokenizer(&path).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let vocab = vocab_of(&gguf_file::Content::read(&mut file).unwrap());
    let enc = tokenizer.encode("The capital of France is", false).unwrap();
    assert_eq!(
        enc.get_ids(),
        ids(&vocab, &["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"]).as_slice()
    );
    // Digits one by one, special tokens whole, and the text decodes back.
    let enc = tokenizer.encode("<|im_start|>year 2024", false).unwrap();
    assert_eq!(
        enc.get_ids(),
        ids(&vocab, &["<|im_start|>", "year", "Ġ", "2", "0", "2", "4"]).as_slice()
    );
    let back = tokenizer.decode(enc.get_ids(), false).unwrap();
    assert_eq!(back, "<|im_start|>year 2024");
}

#[test]
fn llm_encoder_gives_dense_and_sparse_outputs() {
    use bmp_encoder::llm_embed::{DenseIndex, LlmEncoder, Pooling};
    let Some(path) = gguf() else { return };
    let enc = LlmEncoder::load(&path, Some(12), 64).unwrap();
    let texts = [
        "The cat sat on the mat.",
        "A cat was sitting on a small rug.",
        "Stock markets fell sharply after the interest rate decision.",
    ];
    for pooling in [Pooling::Mean, Pooling::LastToken] {
        let batch = enc.encode_dense(&texts, pooling, texts.len()).unwrap();
        let mut index = DenseIndex::new(batch[0].len());
        for (i, v) in batch.iter().enumerate() {
            let norm: f32 = v.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-4);
            // Batched (padded) equals alone.
            let alone = enc.encode_dense(&[texts[i]], pooling, 1).unwrap();
            for (a, b) in alone[0].iter().zip(v) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{pooling:?}: padding changed text {i}"
                );
            }
            index.push(v).unwrap();
        }
        // The two cat sentences are nearer each other than the market one.
        let hits = index.search(&batch[0], 3);
        assert_eq!(hits[0].0, 0);
        assert_eq!(hits[1].0, 1, "{pooling:?}: {hits:?}");
    }
    let sparse = enc.encode_sparse(&texts[..1], 8).unwrap();
    assert!(!sparse[0].is_empty());
    assert!(sparse[0].windows(2).all(|w| w[0].0 < w[1].0));
    assert!(sparse[0].iter().all(|&(_, w)| w > 0.0 && w.is_finite()));
    assert_eq!(sparse, enc.encode_sparse(&texts[..1], 1).unwrap());
    // Batched (length-sorted, padded) equals one at a time, in input order.
    let alone: Vec<_> = texts
        .iter()
        .map(|t| enc.encode_sparse(&[*t], 1).unwrap().remove(0))
        .collect();
    let batched = enc.encode_sparse(&texts, 8).unwrap();
    for (a, b) in alone.iter().zip(&batched) {
        assert_eq!(
            a.iter().map(|e| e.0).collect::<Vec<_>>(),
            b.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        assert!(a.iter().zip(b).all(|(x, y)| (x.1 - y.1).abs() < 1e-3));
    }
    // One pass for both outputs gives what the two passes give.
    let both = enc
        .encode_sparse_and_dense(&texts[..2], Pooling::Mean, 1)
        .unwrap();
    let dense = enc.encode_dense(&texts[..2], Pooling::Mean, 2).unwrap();
    for (i, (s, d)) in both.iter().enumerate() {
        assert_eq!(s, &enc.encode_sparse(&texts[i..=i], 1).unwrap()[0]);
        assert!(d.iter().zip(&dense[i]).all(|(a, b)| (a - b).abs() < 1e-4));
    }
    // An empty text (Cranfield has one) matches nothing and leaves its batch unchanged.
    let with_empty = enc.encode_dense(&[texts[0], ""], Pooling::Mean, 2).unwrap();
    assert!(with_empty[1].iter().all(|&x| x == 0.0));
    assert!(with_empty[0]
        .iter()
        .zip(&dense[0])
        .all(|(a, b)| (a - b).abs() < 1e-4));
    let with_empty = enc.encode_sparse(&["", texts[0]], 4).unwrap();
    assert!(with_empty[0].is_empty());
    assert_eq!(with_empty[1].len(), sparse[0].len());
    let (s, d) = &enc
        .encode_sparse_and_dense(&[""], Pooling::LastToken, 4)
        .unwrap()[0];
    assert!(s.is_empty() && d.len() == dense[0].len() && d.iter().all(|&x| x == 0.0));
}

#[test]
fn layer_cut_analysis_on_real_pairs() {
    use bmp_encoder::layer_cut::{angular_distances, best_depths, layer_losses};
    let Some(path) = gguf() else { return };
    let model = LlamaModel::from_gguf(&path, Some(8), &Device::Cpu).unwrap();
    let tokenizer = bmp_encoder::gguf_tokenizer::gguf_tokenizer(&path).unwrap();
    let tok = |t: &str| tokenizer.encode(t, false).unwrap().get_ids().to_vec();
    let queries: Vec<Vec<u32>> = ["cat on a mat", "stock market crash", "rain tomorrow"]
        .iter()
        .map(|t| tok(t))
        .collect();
    let docs: Vec<Vec<u32>> = [
        "The cat sat on the mat all afternoon.",
        "Shares fell sharply as the stock market crashed.",
        "Forecasters expect heavy rain tomorrow morning.",
    ]
    .iter()
    .map(|t| tok(t))
    .collect();
    let d = angular_distances(&model, &docs, 2).unwrap();
    assert_eq!(d.len(), 8 - 2 + 1);
    assert!(d.iter().all(|x| (0.0..=1.0).contains(x)), "{d:?}");
    let losses = layer_losses(&model, &queries, &docs).unwrap();
    assert_eq!(losses.len(), 9, "depths 0..=8");
    assert!(
        losses.iter().all(|l| l.is_finite() && *l >= 0.0),
        "{losses:?}"
    );
    let (low, high) = best_depths(&losses);
    assert!(
        (1..=4).contains(&low) && (5..=8).contains(&high),
        "{low} {high}"
    );
    assert!(angular_distances(&model, &docs, 9).is_err());
    assert!(layer_losses(&model, &queries[..1], &docs[..1]).is_err());
}

#[test]
fn a_cut_model_saved_as_safetensors_loads_back_with_the_same_outputs() {
    let Some(path) = gguf() else { return };
    let device = Device::Cpu;
    let cut = LlamaModel::from_gguf(&path, Some(6), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cut.save(dir.path()).unwrap();
    let back = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    assert_eq!(back.config(), cut.config());
    let ids = Tensor::new(&[[504u32, 3458, 282, 4649, 314], [1, 2, 3, 4, 5]], &device).unwrap();
    let mask = Tensor::new(&[[1u8, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device).unwrap();
    let a = cut
        .logits(&cut.hidden_states(&ids, &mask).unwrap())
        .unwrap();
    let b = back
        .logits(&back.hidden_states(&ids, &mask).unwrap())
        .unwrap();
    // Saved in f16 (the quantized source has no float precision of its own): the logits move
    // by f16 rounding only, and every position predicts the same next token.
    let diff = (&a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 0.1, "logits moved by {diff}");
    let top = |t: &Tensor| {
        t.argmax(candle_core::D::Minus1)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap()
    };
    assert_eq!(top(&a), top(&b));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["torch_dtype"], "float16");
    // Two bytes a weight, readable by everyone.
    let meta = std::fs::metadata(dir.path().join("model.safetensors")).unwrap();
    let c = cut.config();
    let per_layer = 4 * c.hidden_size * c.hidden_size;
    assert!(meta.len() < 2 * (c.vocab_size * c.hidden_size + c.num_layers * 4 * per_layer) as u64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o444, 0o444);
    assert!(LlamaModel::from_safetensors(dir.path(), Some(7), &device).is_err());
}

#[test]
fn a_trainable_llama_gives_every_weight_a_gradient() {
    let Some(path) = gguf() else { return };
    let device = Device::Cpu;
    let mut model = LlamaModel::from_gguf(&path, Some(3), &device).unwrap();
    let tokenizer = bmp_encoder::gguf_tokenizer::gguf_tokenizer(&path).unwrap();
    let ids = |t: &str| tokenizer.encode(t, false).unwrap().get_ids().to_vec();
    let before = {
        let q = ids("cats");
        let t = Tensor::new(q.as_slice(), &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let m = Tensor::ones((1, q.len()), candle_core::DType::U8, &device).unwrap();
        model.hidden_states(&t, &m).unwrap()
    };
    let vars = model.make_trainable().unwrap();
    assert_eq!(
        vars.len(),
        1 + 3 * 9 + 1,
        "embeddings, 9 per block, final norm (tied head)"
    );
    // The composed rotary path gives the same states as the fused kernel.
    let q = ids("cats");
    let t = Tensor::new(q.as_slice(), &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let m = Tensor::ones((1, q.len()), candle_core::DType::U8, &device).unwrap();
    let after = model.hidden_states(&t, &m).unwrap();
    let diff = (before - after).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
    // InfoNCE of two (query, document) pairs over mean-pooled final states.
    let pooled = |text: &str| {
        let x = ids(text);
        let n = x.len();
        let t = Tensor::new(x.as_slice(), &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let m = Tensor::ones((1, n), candle_core::DType::U8, &device).unwrap();
        let h = model
            .hidden_states(&t, &m)
            .unwrap()
            .get(0)
            .unwrap()
            .mean(0)
            .unwrap();
        let norm = h.sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
        h.broadcast_div(&norm).unwrap()
    };
    let qs = Tensor::stack(&[pooled("cat on a mat"), pooled("stock prices")], 0).unwrap();
    let ds = Tensor::stack(
        &[
            pooled("The cat sat on the mat."),
            pooled("Stock prices fell today."),
        ],
        0,
    )
    .unwrap();
    let scores = (qs.matmul(&ds.t().unwrap()).unwrap() / 0.05).unwrap();
    let logp = candle_nn::ops::log_softmax(&scores, 1).unwrap();
    let targets = Tensor::new(&[[0u32], [1]], &device).unwrap();
    let loss = (logp.gather(&targets, 1).unwrap().mean_all().unwrap() * -1.0).unwrap();
    let grads = loss.backward().unwrap();
    for (name, v) in &vars {
        common::assert_gradient_flows(name, grads.get(v.as_tensor()));
    }
}

#[test]
fn gaprune_and_magnitude_zero_half_of_the_mlp_weights() {
    use bmp_encoder::gaprune::{
        gaprune_scores, gradient_batches, gradient_stats, is_mlp, magnitude_scores, prune_lowest,
    };
    let Some(path) = gguf() else { return };
    let tokenizer = bmp_encoder::gguf_tokenizer::gguf_tokenizer(&path).unwrap();
    let ids = |t: &str| tokenizer.encode(t, false).unwrap().get_ids().to_vec();
    let pairs = |texts: &[(&str, &str)]| -> Vec<(Vec<u32>, Vec<u32>)> {
        texts.iter().map(|(q, d)| (ids(q), ids(d))).collect()
    };
    let domain = pairs(&[
        (
            "vitamin d and bones",
            "Vitamin D supplements did not change bone density.",
        ),
        (
            "insulin resistance",
            "Insulin resistance rises with obesity in adults.",
        ),
        (
            "gene expression in yeast",
            "Yeast genes change expression under heat stress.",
        ),
        (
            "statins and stroke",
            "Statin therapy lowered the risk of stroke.",
        ),
    ]);
    let general = pairs(&[
        ("cat on a mat", "The cat sat on the mat."),
        ("stock prices", "Stock prices fell sharply today."),
        ("rain tomorrow", "Heavy rain is expected tomorrow."),
        ("football final", "The team won the football final."),
    ]);
    let mut model = LlamaModel::from_gguf(&path, Some(2), &Device::Cpu).unwrap();
    let vars = model.make_trainable().unwrap();
    let mut reported = 0;
    let dom = gradient_stats(&model, &vars, &domain, 2, &mut || reported += 1).unwrap();
    let gen = gradient_stats(&model, &vars, &general, 2, &mut || {}).unwrap();
    assert_eq!((dom.batches, gen.batches), (2, 2));
    assert_eq!(reported, 2, "each batch is reported");
    assert_eq!(gradient_batches(domain.len(), 2), 2);
    // A last batch of one pair has no negative and is not taken.
    assert_eq!(
        (
            gradient_batches(5, 2),
            gradient_batches(6, 4),
            gradient_batches(7, 1)
        ),
        (2, 2, 3)
    );
    let mlp: Vec<&String> = vars.iter().map(|(n, _)| n).filter(|n| is_mlp(n)).collect();
    assert_eq!(mlp.len(), 2 * 3);
    for name in &mlp {
        let f = dom.fisher[*name]
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(f > 0.0 && f.is_finite(), "{name}: Fisher sum {f}");
    }
    let scores = gaprune_scores(&vars, &dom, &gen).unwrap();
    let total: usize = mlp
        .iter()
        .map(|n| {
            vars.iter()
                .find(|(m, _)| m == *n)
                .unwrap()
                .1
                .as_tensor()
                .elem_count()
        })
        .sum();
    assert_eq!(prune_lowest(&vars, &scores, 0.5).unwrap(), total / 2);
    let zeros: usize = vars
        .iter()
        .filter(|(n, _)| is_mlp(n))
        .map(|(_, v)| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .filter(|&&x| x == 0.0)
                .count()
        })
        .sum();
    assert!(zeros >= total / 2);
    // The pruned model still runs; magnitude pruning on a fresh copy zeroes the same count.
    let t = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    let m = Tensor::ones((1, 3), candle_core::DType::U8, &Device::Cpu).unwrap();
    assert!(model.hidden_states(&t, &m).is_ok());
    let mut fresh = LlamaModel::from_gguf(&path, Some(2), &Device::Cpu).unwrap();
    let fresh_vars = fresh.make_trainable().unwrap();
    let mag = magnitude_scores(&fresh_vars).unwrap();
    assert_eq!(prune_lowest(&fresh_vars, &mag, 0.5).unwrap(), total / 2);
}
