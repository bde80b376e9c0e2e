//! Loading errors that need no model: each names the missing or broken file.

use bmp_encoder::{EncoderError, SpladeEncoder, SpladeOptions};

#[test]
fn missing_directory_suggests_the_setup_script() {
    let err =
        SpladeEncoder::load("/no/such/model/dir", SpladeOptions::default()).expect_err("must fail");
    assert!(matches!(err, EncoderError::ModelDirNotFound(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("/no/such/model/dir") && msg.contains("setup-models.sh"),
        "{msg}"
    );
}

#[test]
fn each_missing_file_is_named() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let load = || {
        SpladeEncoder::load(dir.path(), SpladeOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(load().contains("config.json"));
    std::fs::write(dir.path().join("config.json"), "{}")?;
    assert!(load().contains("model.safetensors"));
    std::fs::write(dir.path().join("model.safetensors"), b"")?;
    assert!(load().contains("tokenizer.json"));
    Ok(())
}

#[test]
fn broken_files_are_named() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"hidden_size": 8}"#)?;
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors")?;
    std::fs::write(dir.path().join("tokenizer.json"), "{}")?;
    let load = || {
        SpladeEncoder::load(dir.path(), SpladeOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };

    // Config: missing field named, with the file.
    let msg = load();
    assert!(
        msg.contains("config.json") && msg.contains("missing field"),
        "{msg}"
    );

    // Tokenizer: the next thing loaded.
    std::fs::write(
        &config,
        r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu",
            "max_position_embeddings": 16}"#,
    )?;
    let msg = load();
    assert!(msg.contains("tokenizer.json"), "{msg}");
    Ok(())
}
