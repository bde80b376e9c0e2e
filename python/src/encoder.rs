//! `bmp.TextEncoder`: a sparse text encoder (SPLADE, or a decoder LLM through its LM head), as
//! `bmp-index build --model` and `search --model` load it.

use std::path::PathBuf;

use bmp_encoder::{beir_document_text, DeviceKind, Precision, TextEncoderOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::invalid;

/// A sparse text encoder: texts to `{term: weight}` vectors over the model's vocabulary.
#[pyclass(frozen, module = "bmp")]
pub struct TextEncoder {
    inner: bmp_encoder::TextEncoder,
    label: &'static str,
}

/// An encoder error as a Python exception: `OSError` for a model that cannot be read,
/// `ValueError` for everything else.
fn encoder_error(e: bmp_encoder::EncoderError) -> PyErr {
    use bmp_encoder::EncoderError as E;
    match e {
        E::ModelDirNotFound(_) | E::MissingFile { .. } | E::Io { .. } => {
            pyo3::exceptions::PyOSError::new_err(e.to_string())
        }
        e => invalid(e.to_string()),
    }
}

/// The texts of `texts`: strings, or BEIR documents (`{"title", "text"}` mappings, joined as
/// BEIR does).
fn texts_of(texts: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if texts.is_instance_of::<pyo3::types::PyString>() {
        return Err(invalid("texts must be a list of texts, not one str"));
    }
    texts
        .try_iter()?
        .enumerate()
        .map(|(i, t)| {
            let t = t?;
            if let Ok(s) = t.extract::<String>() {
                return Ok(s);
            }
            if let Ok(doc) = t.cast::<PyDict>() {
                let field = |name: &str| -> PyResult<String> {
                    match doc.get_item(name)? {
                        Some(v) => v.extract::<String>(),
                        None => Ok(String::new()),
                    }
                };
                return Ok(beir_document_text(&field("title")?, &field("text")?));
            }
            Err(invalid(format!(
                "texts[{i}] must be a str or a {{\"title\", \"text\"}} mapping"
            )))
        })
        .collect()
}

#[pymethods]
impl TextEncoder {
    /// Loads the model at `model`: a SPLADE directory (Hugging Face layout: config.json,
    /// model.safetensors, tokenizer.json), or a decoder LLM (a .gguf file, or a Llama / Qwen2
    /// directory). `device` is "cpu", "cuda" or "cuda:N" (cuda needs a build with the cuda
    /// feature); `dtype` "f32", or "f16" / "bf16" on cuda. Document vectors keep their
    /// `doc_top_k` heaviest terms and those of at least `doc_min_weight` (a decoder LLM's
    /// documents default to 256 terms); queries are never pruned.
    #[new]
    #[pyo3(signature = (model, *, device="cpu", dtype="f32", batch_size=32, max_length=None,
                        doc_top_k=None, doc_min_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: PathBuf,
        device: &str,
        dtype: &str,
        batch_size: usize,
        max_length: Option<usize>,
        doc_top_k: Option<usize>,
        doc_min_weight: Option<f32>,
    ) -> PyResult<TextEncoder> {
        if batch_size == 0 {
            return Err(invalid("batch_size must be at least 1"));
        }
        let options = TextEncoderOptions {
            batch_size,
            max_length,
            doc_top_k,
            doc_min_weight,
            device: device.parse::<DeviceKind>().map_err(encoder_error)?,
            dtype: dtype.parse::<Precision>().map_err(encoder_error)?,
        };
        let inner = py
            .detach(|| bmp_encoder::TextEncoder::load(&model, &options))
            .map_err(encoder_error)?;
        let label = inner.label();
        Ok(TextEncoder { inner, label })
    }

    /// What the vectors come from: "splade" or "llm-sparse".
    #[getter]
    fn kind(&self) -> &'static str {
        self.label
    }

    /// The vectors of document texts (pruned as the encoder was told), a `{term: weight}` dict
    /// each, in input order. A text may be a str or a BEIR document (`{"title", "text"}`).
    fn encode_documents<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let texts = texts_of(texts)?;
        let (vectors, _) = py
            .detach(|| self.inner.encode_documents(&texts, &mut |_| {}))
            .map_err(encoder_error)?;
        self.dicts(py, &vectors)
    }

    /// The vectors of query texts (never pruned), a `{term: weight}` dict each.
    fn encode_queries<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let texts = texts_of(texts)?;
        let vectors = py
            .detach(|| self.inner.encode_queries(&texts))
            .map_err(encoder_error)?;
        self.dicts(py, &vectors)
    }
}

impl TextEncoder {
    fn dicts<'py>(
        &self,
        py: Python<'py>,
        vectors: &[bmp_encoder::SparseVector],
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for v in vectors {
            let d = PyDict::new(py);
            for &(t, w) in v {
                d.set_item(self.inner.token(t), w)?;
            }
            out.append(d)?;
        }
        Ok(out)
    }
}
