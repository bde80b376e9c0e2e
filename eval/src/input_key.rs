//! What a cached file is made from, as a short key for its name.
//!
//! The pipeline caches encoded vectors, indexes and multi-vector stores under names built from
//! the model's directory name and the encoder options. That name alone does not tell two corpora
//! apart under one `--work-dir`, nor a model from the same model retrained in place; the key of
//! this module does: it hashes the canonical path, length and modification time of every file of
//! each input, so a cache made from other inputs is never reused.

use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// A 12-hex-digit key of `inputs`: each is a file, or a directory whose files (recursively,
/// in name order) are taken.
pub(crate) fn input_key(inputs: &[&Path]) -> Result<String> {
    let mut hasher = Xxh3::new();
    for input in inputs {
        hash_path(&mut hasher, input)?;
    }
    Ok(format!("{:012x}", hasher.digest() >> 16))
}

fn hash_path(hasher: &mut Xxh3, path: &Path) -> Result<()> {
    let canonical = fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let meta = fs::metadata(&canonical).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        let mut entries = fs::read_dir(&canonical)
            .map_err(|e| Error::io(path, e))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io(path, e))?;
        entries.sort();
        for entry in entries {
            hash_path(hasher, &entry)?;
        }
        return Ok(());
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    hasher.update(canonical.as_os_str().as_encoded_bytes());
    hasher.update(&[0]);
    hasher.update(&meta.len().to_le_bytes());
    hasher.update(&modified.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_changes_with_the_corpus_and_with_any_model_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, model) = (
            tmp.path().join("a.jsonl"),
            tmp.path().join("b.jsonl"),
            tmp.path().join("model"),
        );
        fs::write(&a, "{}\n").unwrap();
        fs::write(&b, "{}\n").unwrap();
        fs::create_dir(&model).unwrap();
        fs::write(model.join("config.json"), "{}").unwrap();
        fs::write(model.join("model.safetensors"), "weights").unwrap();

        let key = input_key(&[&a, &model]).unwrap();
        assert_eq!(key.len(), 12);
        assert_eq!(key, input_key(&[&a, &model]).unwrap(), "stable");
        assert_ne!(key, input_key(&[&b, &model]).unwrap(), "another corpus");
        // The same name through another path is the same input.
        let dotted = tmp.path().join(".").join("a.jsonl");
        assert_eq!(key, input_key(&[&dotted, &model]).unwrap());

        fs::write(model.join("model.safetensors"), "retrained").unwrap();
        let retrained = input_key(&[&a, &model]).unwrap();
        assert_ne!(key, retrained, "a model file rewritten");
        fs::write(model.join("extra.bin"), "").unwrap();
        assert_ne!(retrained, input_key(&[&a, &model]).unwrap(), "a file added");

        let missing = tmp.path().join("missing");
        let err = input_key(&[&missing]).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
