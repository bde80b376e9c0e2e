//! Checks the token-embedding encoder against the independent numpy reference in
//! `fixtures/token_reference.json` (written by `scripts/token_reference.py`), on the real
//! all-MiniLM-L6-v2 model from `models/minilm-l6` (fetched by `scripts/setup-models.sh`).

use std::path::PathBuf;

use bmp_encoder::{TokenEncoder, TokenEncoderOptions};
use serde::Deserialize;

mod common;

#[derive(Deserialize)]
struct Fixture {
    max_length: usize,
    dims_kept: usize,
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    head: Vec<f64>,
    sum: f64,
}

fn fixture() -> Fixture {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token_reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}

fn model_dir() -> Option<PathBuf> {
    common::model_path("minilm-l6", "model.safetensors")
}

#[test]
fn token_vectors_match_the_numpy_reference_batched_and_alone() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let encoder = TokenEncoder::load(
        &dir,
        TokenEncoderOptions {
            max_length: fx.max_length,
            batch_size: 3,
            ..TokenEncoderOptions::default()
        },
    )
    .expect("loads all-MiniLM-L6-v2");
    assert_eq!(encoder.dim(), 384);
    assert!(!encoder.has_projection());
    let texts: Vec<&str> = fx.sentences.iter().map(|s| s.text.as_str()).collect();
    let batched = encoder.encode(&texts).expect("encodes");
    for (sentence, got) in fx.sentences.iter().zip(&batched) {
        assert_eq!(got.len(), sentence.vectors.len(), "{:?}", sentence.text);
        for (i, (row, want)) in got.rows().zip(&sentence.vectors).enumerate() {
            let norm: f32 = row.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-4, "token {i} not unit length");
            for (d, (&g, &w)) in row.iter().zip(&want.head).take(fx.dims_kept).enumerate() {
                assert!(
                    (f64::from(g) - w).abs() < 1e-4,
                    "{:?} token {i} dim {d}: {g} vs {w}",
                    sentence.text
                );
            }
            let sum: f64 = row.iter().map(|&x| f64::from(x)).sum();
            assert!(
                (sum - want.sum).abs() < 2e-3,
                "token {i} sum {sum} vs {}",
                want.sum
            );
        }
        // Alone (no padding) gives the same vectors as in the padded batch.
        let alone = encoder.encode(&[sentence.text.as_str()]).expect("encodes");
        for (a, b) in alone[0].data.iter().zip(&got.data) {
            assert!((a - b).abs() < 1e-4, "padding changed a vector");
        }
    }
    assert!(encoder.encode(&[""]).expect("encodes")[0].is_empty());
}
