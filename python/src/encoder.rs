//! `bmp.TextEncoder`: a sparse text encoder (SPLADE, or a decoder LLM through its LM head), as
//! `bmp-index build --model` and `search --model` load it.

use std::path::PathBuf;

use bmp_encoder::{beir_document_text, DeviceKind, Precision, TextEncoderOptions};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{encoder_to_py, invalid};

/// A sparse text encoder: texts to `{term: weight}` vectors over the model's vocabulary.
#[pyclass(frozen, module = "bmp")]
pub struct TextEncoder {
    pub(crate) inner: bmp_encoder::TextEncoder,
    label: &'static str,
}

/// The encoder options of these keyword arguments, checked.
pub fn encoder_options(
    device: &str,
    dtype: &str,
    batch_size: usize,
    max_length: Option<usize>,
    doc_top_k: Option<usize>,
    doc_min_weight: Option<f32>,
    query_instruction: Option<String>,
) -> PyResult<TextEncoderOptions> {
    if batch_size == 0 {
        return Err(invalid("batch_size must be at least 1"));
    }
    Ok(TextEncoderOptions {
        batch_size,
        max_length,
        doc_top_k,
        doc_min_weight,
        device: device.parse::<DeviceKind>().map_err(encoder_to_py)?,
        dtype: dtype.parse::<Precision>().map_err(encoder_to_py)?,
        query_instruction,
        dense_dim: None,
    })
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
    /// documents default to 256 terms); queries are never pruned. `query_instruction` is put
    /// before every query text (e.g. Qwen3-Embedding's `"Instruct: ...\nQuery:"`).
    #[new]
    #[pyo3(signature = (model, *, device="cpu", dtype="f32", batch_size=32, max_length=None,
                        doc_top_k=None, doc_min_weight=None, query_instruction=None))]
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
        query_instruction: Option<String>,
    ) -> PyResult<TextEncoder> {
        let options = encoder_options(
            device,
            dtype,
            batch_size,
            max_length,
            doc_top_k,
            doc_min_weight,
            query_instruction,
        )?;
        let inner = py
            .detach(|| bmp_encoder::TextEncoder::load(&model, &options))
            .map_err(encoder_to_py)?;
        let label = inner.label();
        Ok(TextEncoder { inner, label })
    }

    /// What the vectors come from: "splade" or "llm-sparse".
    #[getter]
    fn kind(&self) -> &'static str {
        self.label
    }

    /// The model's vocabulary: the term of each column of the matrices `output="csr"` gives
    /// (`Index.build` and `Index.search` take it as `vocabulary`).
    #[getter]
    fn vocabulary(&self) -> Vec<String> {
        (0..self.inner.vocab_size() as u32)
            .map(|t| self.inner.token(t).to_owned())
            .collect()
    }

    /// The vectors of document texts (pruned as the encoder was told), in input order. A text
    /// may be a str or a BEIR document (`{"title", "text"}`). `output="dict"` gives a list of
    /// `{term: weight}` dicts; `output="csr"` one `scipy.sparse.csr_matrix` (float32), a row per
    /// text and a column per term of `vocabulary`.
    #[pyo3(signature = (texts, *, output="dict"))]
    fn encode_documents<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        output: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let output = Output::parse(output)?;
        let texts = texts_of(texts)?;
        let (vectors, _) = py
            .detach(|| self.inner.encode_documents(&texts, &mut |_| {}))
            .map_err(encoder_to_py)?;
        self.output(py, &vectors, output)
    }

    /// The vectors of query texts (never pruned), as `encode_documents` gives them.
    #[pyo3(signature = (texts, *, output="dict"))]
    fn encode_queries<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        output: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let output = Output::parse(output)?;
        let texts = texts_of(texts)?;
        let vectors = py
            .detach(|| self.inner.encode_queries(&texts))
            .map_err(encoder_to_py)?;
        self.output(py, &vectors, output)
    }
}

/// What the encoding methods return.
#[derive(Clone, Copy)]
enum Output {
    /// A list of `{term: weight}` dicts.
    Dicts,
    /// One SciPy CSR matrix.
    Csr,
}

impl Output {
    fn parse(s: &str) -> PyResult<Output> {
        match s {
            "dict" => Ok(Output::Dicts),
            "csr" => Ok(Output::Csr),
            _ => Err(invalid(format!(
                "output must be \"dict\" or \"csr\", not {s:?}"
            ))),
        }
    }
}

impl TextEncoder {
    fn output<'py>(
        &self,
        py: Python<'py>,
        vectors: &[bmp_encoder::SparseVector],
        output: Output,
    ) -> PyResult<Bound<'py, PyAny>> {
        match output {
            Output::Dicts => {
                let out = PyList::empty(py);
                for v in vectors {
                    let d = PyDict::new(py);
                    for &(t, w) in v {
                        d.set_item(self.inner.token(t), w)?;
                    }
                    out.append(d)?;
                }
                Ok(out.into_any())
            }
            Output::Csr => {
                let mut indptr = Vec::with_capacity(vectors.len() + 1);
                let mut indices = Vec::new();
                let mut data = Vec::new();
                indptr.push(0i64);
                for v in vectors {
                    for &(t, w) in v {
                        indices.push(t as i32);
                        data.push(w);
                    }
                    indptr.push(indices.len() as i64);
                }
                let arrays = (
                    PyArray1::from_vec(py, data),
                    PyArray1::from_vec(py, indices),
                    PyArray1::from_vec(py, indptr),
                );
                let shape = (vectors.len(), self.inner.vocab_size());
                let kwargs = PyDict::new(py);
                kwargs.set_item("shape", shape)?;
                py.import("scipy.sparse")?
                    .getattr("csr_matrix")?
                    .call((arrays,), Some(&kwargs))
            }
        }
    }
}
