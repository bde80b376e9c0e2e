//! Locating and checking a model directory in Hugging Face layout.

use std::path::{Path, PathBuf};

use crate::error::{EncoderError, Result};

/// The files of a model directory in Hugging Face layout, checked to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    /// The directory itself.
    pub dir: PathBuf,
    /// `config.json`: the architecture's hyper-parameters.
    pub config: PathBuf,
    /// `model.safetensors`: the weights.
    pub weights: PathBuf,
    /// `tokenizer.json`: the tokenizer (Hugging Face `tokenizers` format).
    pub tokenizer: PathBuf,
}

impl ModelDir {
    /// File name of the model configuration.
    pub const CONFIG_FILE: &'static str = "config.json";
    /// File name of the weights.
    pub const WEIGHTS_FILE: &'static str = "model.safetensors";
    /// File name of the tokenizer.
    pub const TOKENIZER_FILE: &'static str = "tokenizer.json";

    /// Checks that `dir` is a directory holding `config.json`, `model.safetensors` and
    /// `tokenizer.json`; the error names the first file that is missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(EncoderError::ModelDirNotFound(dir));
        }
        let config = required_file(&dir, Self::CONFIG_FILE)?;
        let weights = required_file(&dir, Self::WEIGHTS_FILE)?;
        let tokenizer = required_file(&dir, Self::TOKENIZER_FILE)?;
        Ok(Self {
            dir,
            config,
            weights,
            tokenizer,
        })
    }
}

fn required_file(dir: &Path, file: &'static str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EncoderError::MissingFile {
            dir: dir.to_path_buf(),
            file,
            path,
        })
    }
}

/// Makes a written file readable by everyone, as a model directory's files are (the safetensors
/// writer creates its file for its owner alone).
pub(crate) fn readable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut permissions = std::fs::metadata(path)?.permissions();
        permissions.set_mode(permissions.mode() | 0o444);
        std::fs::set_permissions(path, permissions)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_is_reported() {
        let err = ModelDir::open("/definitely/not/here").unwrap_err();
        assert!(matches!(err, EncoderError::ModelDirNotFound(_)));
        assert!(err.to_string().contains("/definitely/not/here"));
    }

    #[test]
    fn names_the_first_missing_file() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let err = ModelDir::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");

        std::fs::write(dir.path().join("config.json"), "{}")?;
        let err = ModelDir::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");

        std::fs::write(dir.path().join("model.safetensors"), "")?;
        let err = ModelDir::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                EncoderError::MissingFile {
                    file: "tokenizer.json",
                    ..
                }
            ),
            "{err}"
        );

        std::fs::write(dir.path().join("tokenizer.json"), "{}")?;
        let found = ModelDir::open(dir.path())?;
        assert_eq!(found.tokenizer, dir.path().join("tokenizer.json"));
        Ok(())
    }
}
