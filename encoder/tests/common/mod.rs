//! What the encoder's real-model tests share: finding a model that `scripts/setup-models.sh`
//! placed under `$BMP_MODELS_DIR` (default `<repo>/models`).

use std::path::PathBuf;

/// `<models>/<relative>` when `<models>/<relative>/<probe>` (or the path itself, for an empty
/// probe) is a file; otherwise `None` after a note, or a panic under CI.
pub fn model_path(relative: &str, probe: &str) -> Option<PathBuf> {
    let models = std::env::var_os("BMP_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    let path = models.join(relative);
    let file = if probe.is_empty() {
        path.clone()
    } else {
        path.join(probe)
    };
    if file.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: run scripts/setup-models.sh before the tests",
        path.display()
    );
    eprintln!(
        "note: skipping, {} is missing (run scripts/setup-models.sh to fetch the model)",
        path.display()
    );
    None
}
