//! The decoder LLM trainer on SmolLM2-135M (fetched by `scripts/setup-models.sh`): each part of
//! the loss is there, and the FLOPS regularizer lightens the sparse vectors that `encode` makes.

mod common;

use bmp_encoder::llm_embed::LlmEncoder;
use bmp_encoder::llm_train::{LlmTrainOptions, LlmTrainer};
use common::model_path;

const PAIRS: [(&str, &str); 3] = [
    (
        "wing flutter",
        "flutter of a swept wing at high subsonic speed",
    ),
    (
        "boundary layer heat transfer",
        "heat transfer through a laminar boundary layer on a flat plate",
    ),
    (
        "shock waves in nozzles",
        "the position of a normal shock wave in a convergent divergent nozzle",
    ),
];

fn options(sparse_weight: f64, flops_weight: f64) -> LlmTrainOptions {
    LlmTrainOptions {
        query_max_length: 8,
        doc_max_length: 16,
        sparse_weight,
        flops_weight,
        ..LlmTrainOptions::default()
    }
}

fn gguf() -> Option<std::path::PathBuf> {
    model_path("smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf", "")
}

#[test]
fn the_loss_adds_the_sparse_loss_and_the_flops_regularizer() {
    let Some(gguf) = gguf() else { return };
    let loss = |sparse, flops| {
        LlmTrainer::load(&gguf, options(sparse, flops))
            .unwrap()
            .evaluate(&PAIRS)
            .unwrap()
            .loss
    };
    let dense = loss(0.0, 0.0);
    let sparse = loss(1.0, 0.0);
    let regularized = loss(1.0, 1e-4);
    assert!(dense.is_finite() && dense > 0.0, "{dense}");
    // The in-batch loss of the sparse vectors is positive, and so is their FLOPS.
    assert!(sparse > dense, "dense {dense}, with sparse {sparse}");
    assert!(regularized > sparse, "{sparse} -> {regularized}");
    assert!(LlmTrainer::load(&gguf, options(-1.0, 0.0)).is_err());
}

#[test]
fn the_flops_regularizer_makes_the_encoded_vectors_lighter() {
    let Some(gguf) = gguf() else { return };
    let texts: Vec<&str> = PAIRS.iter().map(|p| p.1).collect();
    let weight = |encoder: &LlmEncoder| -> f32 {
        let vectors = encoder.encode_sparse(&texts, 4).unwrap();
        vectors.iter().flat_map(|v| v.iter().map(|&(_, w)| w)).sum()
    };
    let before = weight(&LlmEncoder::load_any(&gguf, 16).unwrap());
    let mut trainer = LlmTrainer::load(
        &gguf,
        LlmTrainOptions {
            learning_rate: 1e-3,
            ..options(1.0, 1.0)
        },
    )
    .unwrap();
    trainer.step(&PAIRS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    trainer.save(dir.path()).unwrap();
    let after = weight(&LlmEncoder::load_any(dir.path(), 16).unwrap());
    assert!(
        after < 0.5 * before,
        "total sparse weight {before} -> {after} after one strongly regularized step"
    );
}
