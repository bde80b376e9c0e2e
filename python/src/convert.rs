//! Python data to the engine's: documents from an iterable of `(id, {term: weight})` or from a
//! SciPy CSR matrix with its vocabulary, queries from a dict or a sparse row.

use bmp_index::{Collection, Index};
use bmp_query::Query;
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::invalid;

/// A document or query vector as the engine takes it: `(term, weight)` entries.
pub type Entries = Vec<(String, f32)>;

/// Whether `object` is a SciPy sparse matrix or array (anything with a `tocsr` method).
pub fn is_sparse(object: &Bound<'_, PyAny>) -> bool {
    object.hasattr("tocsr").unwrap_or(false)
}

/// An id given as a string or an integer, as a string.
fn id_string(id: &Bound<'_, PyAny>, what: impl Fn() -> String) -> PyResult<String> {
    if id.is_instance_of::<PyString>() {
        return id.extract::<String>();
    }
    if let Ok(n) = id.extract::<i64>() {
        return Ok(n.to_string());
    }
    Err(invalid(format!(
        "{}: an id must be a str or an int, got {}",
        what(),
        id.get_type().name()?
    )))
}

/// The `(term, weight)` entries of a mapping of terms to weights.
pub fn mapping_entries(vector: &Bound<'_, PyAny>, what: impl Fn() -> String) -> PyResult<Entries> {
    let items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match vector.cast::<PyDict>() {
        Ok(dict) => dict.iter().collect(),
        Err(_) => {
            let items = vector.call_method0("items").map_err(|_| {
                invalid(format!(
                    "{}: a vector must be a mapping of terms to weights, got {}",
                    what(),
                    vector
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            items
                .try_iter()?
                .map(|item| item?.extract())
                .collect::<PyResult<_>>()?
        }
    };
    items
        .into_iter()
        .map(|(term, weight)| {
            let term: String = term
                .extract()
                .map_err(|_| invalid(format!("{}: a term must be a str, got {term:?}", what())))?;
            let weight: f32 = weight.extract().map_err(|_| {
                invalid(format!(
                    "{}: the weight of term {term:?} must be a number, got {weight:?}",
                    what()
                ))
            })?;
            Ok((term, weight))
        })
        .collect()
}

/// The `(id, entries)` of an iterable of `(id, {term: weight})` pairs.
pub fn document_pairs(documents: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Entries)>> {
    let mut out = Vec::new();
    for (i, item) in documents.try_iter()?.enumerate() {
        let what = || format!("documents[{i}]");
        let (id, vector) = document_pair(&item?, what)?;
        out.push((id_string(&id, what)?, mapping_entries(&vector, what)?));
    }
    Ok(out)
}

/// The id and vector of one `(id, {term: weight})` pair.
fn document_pair<'py>(
    item: &Bound<'py, PyAny>,
    what: impl Fn() -> String,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    item.extract().map_err(|_| {
        invalid(format!(
            "{}: a document must be an (id, {{term: weight}}) pair",
            what()
        ))
    })
}

/// The documents of an iterable of `(id, {term: weight})` pairs, as a collection.
pub fn collection_from_pairs(documents: &Bound<'_, PyAny>) -> PyResult<Collection> {
    let mut collection = Collection::new();
    let mut entries: Vec<(u32, f32)> = Vec::new();
    for (i, item) in documents.try_iter()?.enumerate() {
        let what = || format!("documents[{i}]");
        let (id, vector) = document_pair(&item?, what)?;
        let id = id_string(&id, what)?;
        entries.clear();
        for (term, weight) in mapping_entries(&vector, what)? {
            entries.push((collection.intern_term(&term), weight));
        }
        collection
            .add_document(&id, &entries)
            .map_err(|m| invalid(format!("{}: {m}", what())))?;
    }
    Ok(collection)
}

/// The three arrays of a CSR matrix: row starts, column of each entry, value of each entry.
pub struct Csr {
    pub indptr: Vec<i64>,
    pub indices: Vec<i64>,
    pub data: Vec<f32>,
}

impl Csr {
    /// The arrays of a SciPy sparse matrix (converted to CSR), read without a Python call per
    /// element.
    pub fn from_scipy(matrix: &Bound<'_, PyAny>) -> PyResult<Csr> {
        let py = matrix.py();
        let numpy = py.import("numpy")?;
        let csr = matrix.call_method0("tocsr")?;
        let array = |name: &str, dtype: &str| -> PyResult<Bound<'_, PyAny>> {
            let kwargs = PyDict::new(py);
            kwargs.set_item("dtype", dtype)?;
            numpy.call_method("ascontiguousarray", (csr.getattr(name)?,), Some(&kwargs))
        };
        let indptr = array("indptr", "int64")?;
        let indices = array("indices", "int64")?;
        let data = array("data", "float32")?;
        let indptr: PyReadonlyArray1<'_, i64> = indptr.extract()?;
        let indices: PyReadonlyArray1<'_, i64> = indices.extract()?;
        let data: PyReadonlyArray1<'_, f32> = data.extract()?;
        Ok(Csr {
            indptr: indptr.as_slice()?.to_vec(),
            indices: indices.as_slice()?.to_vec(),
            data: data.as_slice()?.to_vec(),
        })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Row `r` as `(column, value)` pairs, checked against `columns` columns.
    pub fn row(
        &self,
        r: usize,
        columns: usize,
    ) -> PyResult<impl Iterator<Item = (usize, f32)> + '_> {
        let (Some(&a), Some(&b)) = (self.indptr.get(r), self.indptr.get(r + 1)) else {
            return Err(invalid(format!("row {r} is beyond the matrix")));
        };
        let (a, b) = (usize::try_from(a), usize::try_from(b));
        let (Ok(a), Ok(b)) = (a, b) else {
            return Err(invalid("the matrix's indptr holds a negative offset"));
        };
        if a > b || b > self.indices.len() || b > self.data.len() {
            return Err(invalid(format!(
                "the matrix's indptr is inconsistent at row {r}"
            )));
        }
        for &c in &self.indices[a..b] {
            if c < 0 || c as usize >= columns {
                return Err(invalid(format!(
                    "row {r} has column {c}, but the vocabulary has {columns} terms"
                )));
            }
        }
        Ok(self.indices[a..b]
            .iter()
            .zip(&self.data[a..b])
            .map(|(&c, &v)| (c as usize, v)))
    }
}

/// The documents of a CSR matrix: row `r` is the document `ids[r]` (its row number when no ids
/// are given), column `c` the term `vocabulary[c]`; zeros are left out.
pub fn collection_from_csr(
    csr: &Csr,
    vocabulary: &[String],
    ids: Option<&[String]>,
) -> PyResult<Collection> {
    if let Some(ids) = ids {
        if ids.len() != csr.rows() {
            return Err(invalid(format!(
                "ids has {} entries for a matrix of {} rows",
                ids.len(),
                csr.rows()
            )));
        }
    }
    let mut collection = Collection::with_posting_capacity(csr.data.len());
    let mut term_of_column: Vec<Option<u32>> = vec![None; vocabulary.len()];
    let mut entries: Vec<(u32, f32)> = Vec::new();
    for r in 0..csr.rows() {
        entries.clear();
        for (c, v) in csr.row(r, vocabulary.len())? {
            if v != 0.0 {
                let term = *term_of_column[c]
                    .get_or_insert_with(|| collection.intern_term(&vocabulary[c]));
                entries.push((term, v));
            }
        }
        let id = match ids {
            Some(ids) => ids[r].clone(),
            None => r.to_string(),
        };
        collection
            .add_document(&id, &entries)
            .map_err(|m| invalid(format!("row {r}: {m}")))?;
    }
    Ok(collection)
}

/// The entries of row `r` of a CSR matrix over `vocabulary` (zeros left out).
pub fn csr_row_entries(csr: &Csr, r: usize, vocabulary: &[String]) -> PyResult<Entries> {
    Ok(csr
        .row(r, vocabulary.len())?
        .filter(|&(_, v)| v != 0.0)
        .map(|(c, v)| (vocabulary[c].clone(), v))
        .collect())
}

/// The one-row CSR matrix of a sparse `query` and the vocabulary of its columns, or `None`
/// when `query` is not a sparse matrix.
fn sparse_query_row<'v>(
    query: &Bound<'_, PyAny>,
    vocabulary: Option<&'v [String]>,
    what: &impl Fn() -> String,
) -> PyResult<Option<(Csr, &'v [String])>> {
    if !is_sparse(query) {
        return Ok(None);
    }
    let vocabulary = vocabulary.ok_or_else(|| {
        invalid(format!(
            "{}: a sparse row needs the vocabulary of its columns (vocabulary=...)",
            what()
        ))
    })?;
    let csr = Csr::from_scipy(query)?;
    if csr.rows() != 1 {
        return Err(invalid(format!(
            "{}: a sparse query must have one row, got {}",
            what(),
            csr.rows()
        )));
    }
    Ok(Some((csr, vocabulary)))
}

/// The vector of one query: a mapping of terms to weights, or a one-row sparse matrix over
/// `vocabulary`.
pub fn query_entries(
    query: &Bound<'_, PyAny>,
    vocabulary: Option<&[String]>,
    what: impl Fn() -> String,
) -> PyResult<Entries> {
    match sparse_query_row(query, vocabulary, &what)? {
        Some((csr, vocabulary)) => csr_row_entries(&csr, 0, vocabulary),
        None => mapping_entries(query, what),
    }
}

/// The query over `index` of a mapping of terms to weights, its terms looked up straight from
/// the Python strings (no copy).
fn mapping_query(
    index: &Index,
    vector: &Bound<'_, PyAny>,
    what: impl Fn() -> String,
) -> PyResult<Query> {
    let dict;
    let items = match vector.cast::<PyDict>() {
        Ok(d) => d,
        Err(_) => {
            // Any other mapping: through a dict of its items (terms are checked below).
            dict = PyDict::new(vector.py());
            for (term, weight) in mapping_entries(vector, &what)? {
                dict.set_item(term, weight)?;
            }
            &dict
        }
    };
    let mut pairs: Vec<(Bound<'_, PyString>, f32)> = Vec::with_capacity(items.len());
    for (term, weight) in items.iter() {
        let term = term.cast_into::<PyString>().map_err(|e| {
            invalid(format!(
                "{}: a term must be a str, got {:?}",
                what(),
                e.into_inner()
            ))
        })?;
        let weight: f32 = weight.extract().map_err(|_| {
            invalid(format!(
                "{}: the weight of term {term:?} must be a number, got {weight:?}",
                what()
            ))
        })?;
        pairs.push((term, weight));
    }
    let terms = pairs
        .iter()
        .map(|(t, w)| Ok((t.to_str()?, *w)))
        .collect::<PyResult<Vec<(&str, f32)>>>()?;
    Query::from_terms(index, terms).map_err(|e| invalid(format!("{}: {e}", what())))
}

/// The query over `index` of row `r` of a CSR matrix over `vocabulary` (zeros left out).
fn csr_row_query(
    index: &Index,
    csr: &Csr,
    r: usize,
    vocabulary: &[String],
    what: impl Fn() -> String,
) -> PyResult<Query> {
    let terms = csr
        .row(r, vocabulary.len())?
        .filter(|&(_, v)| v != 0.0)
        .map(|(c, v)| (vocabulary[c].as_str(), v));
    Query::from_terms(index, terms).map_err(|e| invalid(format!("{}: {e}", what())))
}

/// The query over `index` of one query: a mapping of terms to weights, or a one-row sparse
/// matrix over `vocabulary`.
pub fn query_of(
    index: &Index,
    query: &Bound<'_, PyAny>,
    vocabulary: Option<&[String]>,
    what: impl Fn() -> String,
) -> PyResult<Query> {
    match sparse_query_row(query, vocabulary, &what)? {
        Some((csr, vocabulary)) => csr_row_query(index, &csr, 0, vocabulary, what),
        None => mapping_query(index, query, what),
    }
}

/// The queries over `index` of many queries: an iterable of mappings or sparse rows, or one
/// sparse matrix (a query per row) over `vocabulary`.
pub fn queries_of(
    index: &Index,
    queries: &Bound<'_, PyAny>,
    vocabulary: Option<&[String]>,
) -> PyResult<Vec<Query>> {
    if is_sparse(queries) {
        let vocabulary = vocabulary.ok_or_else(|| {
            invalid(
                "a sparse matrix of queries needs the vocabulary of its columns (vocabulary=...)",
            )
        })?;
        let csr = Csr::from_scipy(queries)?;
        return (0..csr.rows())
            .map(|r| csr_row_query(index, &csr, r, vocabulary, || format!("queries[{r}]")))
            .collect();
    }
    queries
        .try_iter()?
        .enumerate()
        .map(|(i, q)| query_of(index, &q?, vocabulary, || format!("queries[{i}]")))
        .collect()
}

/// External document ids given as strings or integers.
pub fn id_list(ids: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if ids.is_instance_of::<PyString>() {
        return Err(invalid(format!("{what} must be a list of ids, not a str")));
    }
    ids.try_iter()?
        .enumerate()
        .map(|(i, id)| id_string(&id?, || format!("{what}[{i}]")))
        .collect()
}
