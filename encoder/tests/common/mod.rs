//! What the encoder's tests share: finding a model that `scripts/setup-models.sh` placed under
//! `$BMP_MODELS_DIR` (default `<repo>/models`), and checking that a gradient reached a weight.
// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Tensor;

/// Checks that the weight `name` got a gradient, and that it is finite and not all zero.
pub fn assert_gradient_flows(name: &str, grad: Option<&Tensor>) {
    let grad = grad.unwrap_or_else(|| panic!("{name} has no gradient"));
    let size = grad
        .sqr()
        .and_then(|g| g.sum_all())
        .and_then(|g| g.to_scalar::<f32>())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        size > 0.0 && size.is_finite(),
        "{name}: gradient norm² {size}"
    );
}

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
