//! Learned clustering on the real all-MiniLM-L6-v2 (`models/minilm-l6`, from
//! `scripts/setup-models.sh`): the trainable encoder matches the inference one, every weight gets
//! a gradient through the clustering and the Chamfer loss, the loss falls, and the saved model
//! loads as a token encoder.

use std::path::PathBuf;

use bmp_encoder::train::{ChamferTrainer, TrainOptions};
use bmp_encoder::{TokenEncoder, TokenEncoderOptions};
use candle_core::Device;

mod common;

fn model_dir() -> Option<PathBuf> {
    common::model_path("minilm-l6", "model.safetensors")
}

const PAIRS: [(&str, &str); 4] = [
    (
        "heat transfer in laminar boundary layers",
        "measurements of heat transfer rates in a laminar boundary layer on a flat plate",
    ),
    (
        "vitamin d and bone density",
        "a randomized trial of vitamin d supplements found no change in bone mineral density",
    ),
    (
        "protein folding simulations",
        "molecular dynamics simulations reveal intermediate states of small protein folding",
    ),
    (
        "supersonic wing flutter",
        "flutter of swept wings at supersonic speeds was studied in a wind tunnel",
    ),
];

fn options(clusters: &str) -> TrainOptions {
    TrainOptions {
        clusters: clusters.parse().unwrap(),
        learning_rate: 1e-4,
        query_max_length: 16,
        doc_max_length: 24,
        ..TrainOptions::default()
    }
}

#[test]
fn the_trainable_encoder_matches_the_inference_encoder() {
    let Some(dir) = model_dir() else { return };
    let trainer = ChamferTrainer::load(&dir, options("none"), &Device::Cpu).unwrap();
    let encoder = TokenEncoder::load(
        &dir,
        TokenEncoderOptions {
            max_length: 24,
            ..TokenEncoderOptions::default()
        },
    )
    .unwrap();
    let texts: Vec<&str> = PAIRS.iter().map(|p| p.1).collect();
    let ours = trainer.embed(&texts).unwrap();
    let reference = encoder.encode(&texts).unwrap();
    for (a, b) in ours.iter().zip(&reference) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}

#[test]
fn every_weight_gets_a_gradient_through_the_clustering() {
    let Some(dir) = model_dir() else { return };
    let trainer = ChamferTrainer::load(&dir, options("C2x4"), &Device::Cpu).unwrap();
    let grads = trainer.gradients(&PAIRS).unwrap();
    // Three embedding tables and their LayerNorm (2), and 16 tensors in each of 6 layers.
    assert_eq!(grads.len(), 5 + 6 * 16);
    for (name, grad) in grads {
        common::assert_gradient_flows(&name, grad.as_ref());
    }
}

#[test]
fn the_loss_falls_and_the_trained_model_loads() {
    let Some(dir) = model_dir() else { return };
    let mut trainer = ChamferTrainer::load(&dir, options("C2x4"), &Device::Cpu).unwrap();
    let before = trainer.evaluate(&PAIRS).unwrap().loss;
    for _ in 0..6 {
        trainer.step(&PAIRS).unwrap();
    }
    let after = trainer.evaluate(&PAIRS).unwrap().loss;
    assert!(after < before * 0.8, "loss {before} -> {after}");
    let out = tempfile::tempdir().unwrap();
    trainer.save(&dir, out.path()).unwrap();
    let encoder = TokenEncoder::load(out.path(), TokenEncoderOptions::default()).unwrap();
    let v = encoder.encode(&[PAIRS[0].0]).unwrap();
    assert!(!v[0].is_empty());
    assert!(ChamferTrainer::load(&dir, options("C2x4"), &Device::Cpu)
        .unwrap()
        .step(&PAIRS[..1])
        .is_err());
}
