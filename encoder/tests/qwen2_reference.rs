//! Our decoder forward on a Qwen2 checkpoint (query / key / value biases, rotate-halves rotary
//! embeddings, tied LM head) against candle-transformers' Qwen2 on the same weights. The
//! checkpoint is written here with random weights: no Qwen2 model ships with the project's data,
//! and the check is of the forward pass, not of a trained model.

use std::collections::HashMap;
use std::path::Path;

use bmp_encoder::llama::LlamaModel;
use bmp_encoder::llm_embed::LlmEncoder;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::qwen2;

mod common;

const VOCAB: usize = 96;
const HIDDEN: usize = 32;
const INTERMEDIATE: usize = 48;
const LAYERS: usize = 3;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;

fn config() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 64,
        "sliding_window": 64,
        "max_window_layers": LAYERS,
        "use_sliding_window": false,
        "tie_word_embeddings": true,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
    })
}

/// Writes a Qwen2 directory with random weights (norm weights around 1, biases non-zero).
fn write_checkpoint(dir: &Path) {
    let device = Device::Cpu;
    let dh = HIDDEN / HEADS;
    let randn = |shape: &[usize], std: f64| {
        Tensor::randn(0f32, std as f32, shape, &device)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
    };
    let norm = |n: usize| (randn(&[n], 0.1) + 1.0).unwrap();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert(
        "model.embed_tokens.weight".into(),
        randn(&[VOCAB, HIDDEN], 0.5),
    );
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        for (name, t) in [
            ("input_layernorm.weight", norm(HIDDEN)),
            ("self_attn.q_proj.weight", randn(&[HEADS * dh, HIDDEN], 0.2)),
            ("self_attn.q_proj.bias", randn(&[HEADS * dh], 0.5)),
            (
                "self_attn.k_proj.weight",
                randn(&[KV_HEADS * dh, HIDDEN], 0.2),
            ),
            ("self_attn.k_proj.bias", randn(&[KV_HEADS * dh], 0.5)),
            (
                "self_attn.v_proj.weight",
                randn(&[KV_HEADS * dh, HIDDEN], 0.2),
            ),
            ("self_attn.v_proj.bias", randn(&[KV_HEADS * dh], 0.5)),
            ("self_attn.o_proj.weight", randn(&[HIDDEN, HEADS * dh], 0.2)),
            ("post_attention_layernorm.weight", norm(HIDDEN)),
            ("mlp.gate_proj.weight", randn(&[INTERMEDIATE, HIDDEN], 0.2)),
            ("mlp.up_proj.weight", randn(&[INTERMEDIATE, HIDDEN], 0.2)),
            ("mlp.down_proj.weight", randn(&[HIDDEN, INTERMEDIATE], 0.2)),
        ] {
            tensors.insert(format!("{p}.{name}"), t);
        }
    }
    tensors.insert("model.norm.weight".into(), norm(HIDDEN));
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config()).unwrap(),
    )
    .unwrap();
}

/// candle-transformers' Qwen2 final hidden states `[b, len, hidden]` (causal mask, no padding).
fn reference_states(dir: &Path, ids: &Tensor) -> Tensor {
    let device = Device::Cpu;
    let cfg: qwen2::Config = serde_json::from_value(config()).unwrap();
    // SAFETY: the file was just written by this test and is not modified while mapped.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &device)
    }
    .unwrap();
    let mut model = qwen2::Model::new(&cfg, vb).unwrap();
    model.forward(ids, 0, None).unwrap()
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

#[test]
fn qwen2_hidden_states_match_candle_transformers() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let device = Device::Cpu;
    let ours = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    assert_eq!(ours.config().num_layers, LAYERS);
    let rows: [[u32; 7]; 2] = [[5, 17, 3, 88, 41, 9, 60], [70, 2, 33, 33, 12, 95, 1]];
    let ids = Tensor::new(&rows, &device).unwrap();
    let mask = Tensor::ones((2, 7), DType::U8, &device).unwrap();
    let expected = reference_states(dir.path(), &ids);
    let got = ours.hidden_states(&ids, &mask).unwrap();
    let diff = max_diff(&got, &expected);
    assert!(diff < 1e-4, "hidden states differ by {diff}");
    // Not a trivial match of near-zero states.
    let scale = expected
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(scale > 0.1, "hidden states of scale {scale}");

    // A right-padded shorter row gives its real positions the same states as alone.
    let padded = Tensor::new(&[[5u32, 17, 3, 0, 0, 0, 0]], &device).unwrap();
    let pad_mask = Tensor::new(&[[1u8, 1, 1, 0, 0, 0, 0]], &device).unwrap();
    let alone = Tensor::new(&[[5u32, 17, 3]], &device).unwrap();
    let a = ours
        .hidden_states(&padded, &pad_mask)
        .unwrap()
        .narrow(1, 0, 3)
        .unwrap();
    let b = reference_states(dir.path(), &alone);
    assert!(max_diff(&a, &b) < 1e-4);
}

#[test]
fn a_cut_qwen2_saves_with_its_biases_and_config() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let device = Device::Cpu;
    let cut = LlamaModel::from_safetensors(dir.path(), Some(2), &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    cut.save(out.path()).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["model_type"], "qwen2");
    assert_eq!(config["num_hidden_layers"], 2);
    assert_eq!(config["max_window_layers"], 2);
    assert_eq!(config["sliding_window"], 64);
    // candle-transformers reads the saved directory as a 2-layer Qwen2 with the same states.
    let ids = Tensor::new(&[[4u32, 8, 15, 16, 23, 42]], &device).unwrap();
    let mask = Tensor::ones((1, 6), DType::U8, &device).unwrap();
    let cfg: qwen2::Config = serde_json::from_value(config).unwrap();
    // SAFETY: written above, not modified while mapped.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[out.path().join("model.safetensors")],
            DType::F32,
            &device,
        )
    }
    .unwrap();
    let expected = qwen2::Model::new(&cfg, vb)
        .unwrap()
        .forward(&ids, 0, None)
        .unwrap();
    let got = cut.hidden_states(&ids, &mask).unwrap();
    assert!(max_diff(&got, &expected) < 1e-4);
    assert!(LlmEncoder::recognizes(out.path()));
}

#[test]
fn a_trainable_qwen2_gives_its_biases_gradients() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let device = Device::Cpu;
    let mut model = LlamaModel::from_safetensors(dir.path(), None, &device).unwrap();
    let vars = model.make_trainable().unwrap();
    let ids = Tensor::new(&[[4u32, 8, 15, 16], [23, 42, 7, 0]], &device).unwrap();
    let mask = Tensor::new(&[[1u8, 1, 1, 1], [1, 1, 1, 0]], &device).unwrap();
    let loss = model
        .hidden_states(&ids, &mask)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let biases: Vec<_> = vars.iter().filter(|(n, _)| n.ends_with(".bias")).collect();
    assert_eq!(biases.len(), 3 * LAYERS);
    for (name, var) in biases {
        common::assert_gradient_flows(name, grads.get(var.as_tensor()));
    }
}
