//! What the end-to-end tests share: finding the real model and datasets they need, skipping
//! with a note when one is missing, and failing instead under CI.

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing prerequisite must fail the test (under CI) rather than skip it.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// `path` if it exists; otherwise `None` after a note (or a panic under CI).
pub fn need(path: PathBuf, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{what} not found at {}", path.display());
    assert!(!required(), "{msg}");
    eprintln!("note: skipping: {msg}");
    None
}

/// The SPLADE model of `scripts/setup-models.sh`.
pub fn model() -> Option<PathBuf> {
    need(
        repo().join("models/splade-tiny"),
        "SPLADE model (run scripts/setup-models.sh)",
    )
}

/// The token-embedding model (all-MiniLM-L6-v2) of `scripts/setup-models.sh`.
#[allow(dead_code)] // not every test crate needs it
pub fn token_model() -> Option<PathBuf> {
    need(
        repo().join("models/minilm-l6"),
        "token model (run scripts/setup-models.sh)",
    )
}

/// The SmolLM2 GGUF of `scripts/setup-models.sh`.
#[allow(dead_code)] // not every test crate needs it
pub fn smollm2() -> Option<PathBuf> {
    need(
        repo().join("models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"),
        "SmolLM2 GGUF (run scripts/setup-models.sh)",
    )
}

/// A BEIR dataset from `../shared/data`.
pub fn dataset(name: &str) -> Option<PathBuf> {
    need(repo().join("../shared/data").join(name), "dataset")
}
