//! Checks the SPLADE encoder against the independent numpy reference in
//! `fixtures/splade_reference.json` (written by `scripts/splade_reference.py`), on the real
//! SPLADE-tiny model from `models/splade-tiny` (fetched by `scripts/setup-models.sh`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bmp_encoder::{Pruning, SparseVector, SpladeEncoder, SpladeOptions};
use serde::Deserialize;

mod common;

const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    max_length: usize,
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    token_ids: Vec<u32>,
    truncated: bool,
    vector: Vec<(u32, f64)>,
}

fn fixture() -> Fixture {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/splade_reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}

fn model_dir() -> Option<PathBuf> {
    common::model_path("splade-tiny", "model.safetensors")
}

fn load(dir: &PathBuf, options: SpladeOptions) -> SpladeEncoder {
    SpladeEncoder::load(dir, options).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn options(max_length: usize) -> SpladeOptions {
    SpladeOptions {
        max_length: Some(max_length),
        ..SpladeOptions::default()
    }
}

/// Every weight within TOLERANCE; a term present on one side only must weigh below TOLERANCE.
fn assert_close(label: &str, expected: &[(u32, f64)], got: &SparseVector) {
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "{label}: output not sorted by token id"
    );
    assert!(
        got.iter().all(|&(_, w)| w > 0.0),
        "{label}: non-positive weight"
    );
    let want: BTreeMap<u32, f64> = expected.iter().copied().collect();
    let have: BTreeMap<u32, f64> = got.iter().map(|&(id, w)| (id, f64::from(w))).collect();
    let mut ids: Vec<u32> = want.keys().chain(have.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut worst = 0.0f64;
    for id in ids {
        match (want.get(&id), have.get(&id)) {
            (Some(&r), Some(&g)) => {
                let diff = (r - g).abs();
                worst = worst.max(diff);
                assert!(diff <= TOLERANCE, "{label}: term {id}: want {r}, got {g}");
            }
            (Some(&r), None) => {
                assert!(r < TOLERANCE, "{label}: term {id} (weight {r}) missing")
            }
            (None, Some(&g)) => {
                assert!(
                    g < TOLERANCE,
                    "{label}: unexpected term {id} with weight {g}"
                )
            }
            (None, None) => {}
        }
    }
    eprintln!("{label}: {} terms, max abs diff {worst:.2e}", got.len());
}

#[test]
fn tokenization_matches_the_reference() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let encoder = load(&dir, options(fx.max_length));
    let texts: Vec<&str> = fx.sentences.iter().map(|s| s.text.as_str()).collect();
    let ids = encoder.tokenize(&texts).expect("tokenize");
    for (s, got) in fx.sentences.iter().zip(&ids) {
        assert_eq!(got, &s.token_ids, "token ids of {:?}", s.text);
    }
    assert!(
        fx.sentences.iter().any(|s| s.truncated),
        "fixture must exercise truncation"
    );
    assert!(ids.iter().any(|s| s.len() == fx.max_length));
    let lengths: std::collections::BTreeSet<usize> = ids.iter().map(Vec::len).collect();
    assert!(lengths.len() >= 4, "fixture must have different lengths");
}

#[test]
fn one_padded_batch_matches_the_reference() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let encoder = load(&dir, options(fx.max_length));
    let texts: Vec<&str> = fx.sentences.iter().map(|s| s.text.as_str()).collect();
    let got = encoder.encode_batch(&texts).expect("encode_batch");
    assert_eq!(got.len(), texts.len());
    for (i, (s, v)) in fx.sentences.iter().zip(&got).enumerate() {
        assert_close(&format!("batch[{i}]"), &s.vector, v);
    }
}

#[test]
fn one_by_one_matches_the_reference() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let encoder = load(&dir, options(fx.max_length));
    for (i, s) in fx.sentences.iter().enumerate() {
        let v = encoder.encode(&s.text).expect("encode");
        assert_close(&format!("single[{i}]"), &s.vector, &v);
        let q = encoder.encode_query(&s.text).expect("encode_query");
        assert_eq!(q, v, "queries use the same model");
    }
}

#[test]
fn small_batches_and_projection_chunks_match_the_reference() {
    // The fused CPU kernel (None) and candle's blocked matmul: blocks of 7 tokens split texts
    // across blocks and put several texts in one.
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    for (batch_size, chunk) in [(2, None), (2, Some(7)), (4, Some(1)), (3, Some(1000))] {
        let encoder = load(
            &dir,
            SpladeOptions {
                batch_size,
                projection_chunk_tokens: chunk,
                ..options(fx.max_length)
            },
        );
        let texts: Vec<&str> = fx.sentences.iter().rev().map(|s| s.text.as_str()).collect();
        let mut done = 0;
        let got = encoder
            .encode_batch_with_progress(&texts, &mut |n| done += n)
            .expect("encode");
        assert_eq!(done, texts.len(), "progress covers every text");
        for (i, (s, v)) in fx.sentences.iter().rev().zip(&got).enumerate() {
            assert_close(&format!("b{batch_size}/c{chunk:?}[{i}]"), &s.vector, v);
        }
    }
}

#[test]
fn pruning_keeps_the_heaviest_terms() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let full = load(&dir, options(fx.max_length));
    let pruned = load(
        &dir,
        SpladeOptions {
            pruning: Pruning {
                top_k: Some(10),
                min_weight: Some(0.05),
            },
            ..options(fx.max_length)
        },
    );
    for s in &fx.sentences {
        let mut expected = full.encode(&s.text).expect("encode");
        bmp_encoder::prune(
            &mut expected,
            &Pruning {
                top_k: Some(10),
                min_weight: Some(0.05),
            },
        );
        let got = pruned.encode(&s.text).expect("encode");
        assert!(got.len() <= 10);
        assert!(got.iter().all(|&(_, w)| w >= 0.05));
        assert_eq!(got, expected);
    }
}

#[test]
fn vocabulary_and_term_weights() {
    let Some(dir) = model_dir() else { return };
    let encoder = load(&dir, SpladeOptions::default());
    assert_eq!(encoder.max_length(), 512);
    assert_eq!(encoder.vocab_size(), 30522);
    let vocab = encoder.vocabulary();
    assert_eq!(vocab.len(), 30522);
    assert_eq!(vocab[0], "[PAD]");
    assert_eq!(vocab[101], "[CLS]");
    assert_eq!(vocab[3007], "capital");
    let distinct: std::collections::HashSet<&String> = vocab.iter().collect();
    assert_eq!(distinct.len(), vocab.len(), "term strings must be unique");

    let v = encoder
        .encode("What is the capital of France?")
        .expect("encode");
    let terms: BTreeMap<&str, f32> = encoder.term_weights(&v).collect();
    assert_eq!(terms.len(), v.len());
    assert!(terms["capital"] > 1.0 && terms["france"] > 1.0, "{terms:?}");

    // An empty text still has [CLS] and [SEP].
    let empty = encoder.encode("").expect("encode empty");
    assert!(!empty.is_empty());
}

#[test]
fn bad_options_are_refused_with_clear_errors() {
    let Some(dir) = model_dir() else { return };
    let err = SpladeEncoder::load(&dir, options(513)).expect_err("must fail");
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
    let err = SpladeEncoder::load(
        &dir,
        SpladeOptions {
            batch_size: 0,
            ..SpladeOptions::default()
        },
    )
    .expect_err("must fail");
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = SpladeEncoder::load(
        &dir,
        SpladeOptions {
            dtype: bmp_encoder::Precision::F16,
            ..SpladeOptions::default()
        },
    )
    .expect_err("must fail");
    assert!(err.to_string().contains("cuda"), "{err}");

    let encoder = load(&dir, options(16));
    let err = encoder
        .encode_token_ids(
            &[vec![101, 40_000, 102]],
            &mut |_| {},
            &mut Default::default(),
        )
        .expect_err("must fail");
    assert!(err.to_string().contains("40000"), "{err}");
    let err = encoder
        .encode_token_ids(&[vec![101; 17]], &mut |_| {}, &mut Default::default())
        .expect_err("must fail");
    assert!(err.to_string().contains("max_length"), "{err}");
}

/// The encoder's fused pooling (real tokens only, max before bias and activation) gives what
/// candle's own `BertForMaskedLM` gives when its full `[batch, len, vocab]` logits are masked,
/// activated and max-pooled the textbook way. Also shows that the tied-decoder renames load.
#[test]
fn fused_pooling_equals_candle_bert_for_masked_lm() {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertForMaskedLM, Config};

    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    let encoder = load(&dir, options(fx.max_length));
    let texts: Vec<&str> = fx.sentences.iter().map(|s| s.text.as_str()).collect();
    let fused = encoder.encode_batch(&texts).expect("encode");

    let run = || -> candle_core::Result<Vec<Vec<f32>>> {
        let dev = Device::Cpu;
        let mut tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &dev)?;
        assert!(!tensors.contains_key("cls.predictions.decoder.weight"));
        let tied = tensors["bert.embeddings.word_embeddings.weight"].clone();
        let bias = tensors["cls.predictions.bias"].clone();
        tensors.insert("cls.predictions.decoder.weight".into(), tied);
        tensors.insert("cls.predictions.decoder.bias".into(), bias);
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json")).map_err(candle_core::Error::wrap)?,
        )
        .map_err(candle_core::Error::wrap)?;
        let model = BertForMaskedLM::load(vb, &config)?;

        let ids = encoder.tokenize(&texts).map_err(candle_core::Error::wrap)?;
        let (b, l) = (ids.len(), ids.iter().map(Vec::len).max().unwrap_or(0));
        let mut flat = vec![0u32; b * l];
        let mut mask = vec![0u32; b * l];
        let mut additive = vec![f32::NEG_INFINITY; b * l];
        for (r, seq) in ids.iter().enumerate() {
            flat[r * l..r * l + seq.len()].copy_from_slice(seq);
            mask[r * l..r * l + seq.len()].fill(1);
            additive[r * l..r * l + seq.len()].fill(0.0);
        }
        let input = Tensor::from_vec(flat, (b, l), &dev)?;
        let mask = Tensor::from_vec(mask, (b, l), &dev)?;
        let additive = Tensor::from_vec(additive, (b, l, 1), &dev)?;
        let logits = model.forward(&input, &input.zeros_like()?, Some(&mask))?;
        let w = logits
            .broadcast_add(&additive)?
            .relu()?
            .affine(1.0, 1.0)?
            .log()?;
        w.max(1)?.to_vec2::<f32>()
    };
    let dense = run().expect("candle BertForMaskedLM");
    for (i, (row, got)) in dense.iter().zip(&fused).enumerate() {
        let want: Vec<(u32, f64)> = row
            .iter()
            .enumerate()
            .filter(|&(_, &w)| w > 0.0)
            .map(|(j, &w)| (j as u32, f64::from(w)))
            .collect();
        assert_close(&format!("bert-for-masked-lm[{i}]"), &want, got);
    }
}
