//! Our decoder forward on Qwen3 and Mistral checkpoints against candle-transformers' own models
//! on the same random weights: Qwen3 (per-head query / key RMS norms, a head width other than
//! hidden / heads, no biases, tied LM head) and Mistral (Llama's blocks, grouped-query
//! attention, an untied LM head). The checkpoints are written here: the check is of the forward
//! pass, not of a trained model.

use std::collections::HashMap;
use std::path::Path;

use bmp_encoder::llama::LlamaModel;
use bmp_encoder::llm_embed::LlmEncoder;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{mistral, qwen3};

const VOCAB: usize = 96;
const HIDDEN: usize = 32;
const INTERMEDIATE: usize = 48;
const LAYERS: usize = 3;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;

fn randn(shape: &[usize], std: f32) -> Tensor {
    Tensor::randn(0f32, std, shape, &Device::Cpu).unwrap()
}

fn norm(n: usize) -> Tensor {
    (randn(&[n], 0.1) + 1.0).unwrap()
}

/// Writes a checkpoint of `config` with random weights, heads of width `dh`; `qk_norm` adds
/// Qwen3's query / key norms, `untied` an LM head of its own.
fn write_checkpoint(
    dir: &Path,
    config: &serde_json::Value,
    dh: usize,
    qk_norm: bool,
    untied: bool,
) {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert(
        "model.embed_tokens.weight".into(),
        randn(&[VOCAB, HIDDEN], 0.5),
    );
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let mut layer = vec![
            ("input_layernorm.weight", norm(HIDDEN)),
            ("self_attn.q_proj.weight", randn(&[HEADS * dh, HIDDEN], 0.2)),
            (
                "self_attn.k_proj.weight",
                randn(&[KV_HEADS * dh, HIDDEN], 0.2),
            ),
            (
                "self_attn.v_proj.weight",
                randn(&[KV_HEADS * dh, HIDDEN], 0.2),
            ),
            ("self_attn.o_proj.weight", randn(&[HIDDEN, HEADS * dh], 0.2)),
            ("post_attention_layernorm.weight", norm(HIDDEN)),
            ("mlp.gate_proj.weight", randn(&[INTERMEDIATE, HIDDEN], 0.2)),
            ("mlp.up_proj.weight", randn(&[INTERMEDIATE, HIDDEN], 0.2)),
            ("mlp.down_proj.weight", randn(&[HIDDEN, INTERMEDIATE], 0.2)),
        ];
        if qk_norm {
            layer.push(("self_attn.q_norm.weight", norm(dh)));
            layer.push(("self_attn.k_norm.weight", norm(dh)));
        }
        for (name, t) in layer {
            tensors.insert(format!("{p}.{name}"), t);
        }
    }
    tensors.insert("model.norm.weight".into(), norm(HIDDEN));
    if untied {
        tensors.insert("lm_head.weight".into(), randn(&[VOCAB, HIDDEN], 0.3));
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config).unwrap(),
    )
    .unwrap();
}

fn var_builder(dir: &Path) -> VarBuilder<'static> {
    // SAFETY: the file was written by this test and is not modified while mapped.
    unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
    }
    .unwrap()
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

fn mean_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

const ROWS: [[u32; 7]; 2] = [[5, 17, 3, 88, 41, 9, 60], [70, 2, 33, 33, 12, 95, 1]];

#[test]
fn qwen3_hidden_states_match_candle_transformers() {
    // Heads of width 16: 4 heads span 64, twice the hidden size, as Qwen3's do.
    let dh = 16;
    let config = serde_json::json!({
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": dh,
        "attention_bias": false,
        "max_position_embeddings": 64,
        "sliding_window": null,
        "max_window_layers": LAYERS,
        "use_sliding_window": false,
        "tie_word_embeddings": true,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
    });
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &config, dh, true, false);
    let device = Device::Cpu;
    let ours = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    assert_eq!(ours.config().head_dim, dh);
    let ids = Tensor::new(&ROWS, &device).unwrap();
    let mask = Tensor::ones((2, 7), DType::U8, &device).unwrap();
    let cfg: qwen3::Config = serde_json::from_value(config.clone()).unwrap();
    let mut reference = qwen3::Model::new(&cfg, var_builder(dir.path())).unwrap();
    let expected = reference.forward(&ids, 0).unwrap();
    let got = ours.hidden_states(&ids, &mask).unwrap();
    let diff = max_diff(&got, &expected);
    assert!(diff < 1e-4, "hidden states differ by {diff}");
    assert!(mean_abs(&expected) > 0.1, "not a match of near-zero states");
    // A cut Qwen3 saves with its norms and head width, and candle-transformers reads it.
    let cut = LlamaModel::from_safetensors(dir.path(), Some(2), &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    cut.save(out.path()).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["model_type"], "qwen3");
    assert_eq!(saved["head_dim"], dh);
    assert_eq!(saved["num_hidden_layers"], 2);
    let cfg: qwen3::Config = serde_json::from_value(saved).unwrap();
    let expected = qwen3::Model::new(&cfg, var_builder(out.path()))
        .unwrap()
        .forward(&ids, 0)
        .unwrap();
    assert!(max_diff(&cut.hidden_states(&ids, &mask).unwrap(), &expected) < 1e-4);
    assert!(LlmEncoder::recognizes(out.path()));
}

#[test]
fn mistral_logits_match_candle_transformers() {
    let config = serde_json::json!({
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 64,
        "sliding_window": 4096,
        "tie_word_embeddings": false,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
    });
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &config, HIDDEN / HEADS, false, true);
    let device = Device::Cpu;
    let ours = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    let ids = Tensor::new(&ROWS, &device).unwrap();
    let mask = Tensor::ones((2, 7), DType::U8, &device).unwrap();
    let cfg: mistral::Config = serde_json::from_value(config).unwrap();
    let mut reference = mistral::Model::new(&cfg, var_builder(dir.path())).unwrap();
    // candle-transformers' Mistral gives the last position's logits.
    let expected = reference.forward(&ids, 0).unwrap();
    let hidden = ours
        .hidden_states(&ids, &mask)
        .unwrap()
        .narrow(1, 6, 1)
        .unwrap();
    let got = ours.logits(&hidden).unwrap();
    let diff = max_diff(&got, &expected);
    assert!(diff < 1e-4, "logits differ by {diff}");
    assert!(mean_abs(&expected) > 0.1);
    assert!(LlmEncoder::recognizes(dir.path()));
}

#[test]
fn a_bf16_checkpoint_is_saved_in_bf16_and_readable() {
    let dh = HIDDEN / HEADS;
    let config = serde_json::json!({
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": dh,
        "tie_word_embeddings": true,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "torch_dtype": "bfloat16",
    });
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &config, dh, true, false);
    // The same weights in bf16, as Qwen3 checkpoints ship.
    let source = dir.path().join("model.safetensors");
    let tensors = candle_core::safetensors::load(&source, &Device::Cpu).unwrap();
    let bf16: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_dtype(DType::BF16).unwrap()))
        .collect();
    candle_core::safetensors::save(&bf16, &source).unwrap();
    let device = Device::Cpu;
    let model = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    model.save(out.path()).unwrap();
    let saved = out.path().join("model.safetensors");
    let meta = std::fs::metadata(&saved).unwrap();
    assert!(meta.len() <= std::fs::metadata(&source).unwrap().len());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o444, 0o444);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["torch_dtype"], "bfloat16");
    // bf16 -> f32 -> bf16 is exact: the saved model answers as the loaded one.
    let back = LlamaModel::from_safetensors(out.path(), None, &device).unwrap();
    let ids = Tensor::new(&ROWS, &device).unwrap();
    let mask = Tensor::ones((2, 7), DType::U8, &device).unwrap();
    let a = model.hidden_states(&ids, &mask).unwrap();
    let b = back.hidden_states(&ids, &mask).unwrap();
    assert_eq!(max_diff(&a, &b), 0.0);
}
