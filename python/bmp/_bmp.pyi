"""Type stubs of the native module ``bmp._bmp``."""

import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

ALGORITHMS: list[str]

class CorruptIndexError(Exception):
    """An index file that is truncated, damaged, not an index, or of another format version."""

Vector = Mapping[str, float]
DocId = Union[str, int]
PathLike = Union[str, os.PathLike[str]]

class Index:
    """A memory-mapped index file; searches release the GIL."""

    @staticmethod
    def open(path: PathLike) -> "Index":
        """Opens an index file (OSError if unreadable, CorruptIndexError if not a valid index)."""
    @staticmethod
    def build(
        path: PathLike,
        documents: Union[Iterable[Tuple[DocId, Vector]], Any, PathLike],
        *,
        vocabulary: Optional[Sequence[str]] = None,
        ids: Optional[Sequence[DocId]] = None,
        format: Optional[str] = None,
        block_size: int = 8,
        superblock_size: int = 64,
        reorder: str = "none",
    ) -> "Index":
        """Builds an index at ``path`` from (id, vector) pairs, a SciPy sparse matrix with
        ``vocabulary`` (and ``ids``), or a JSONL / CIFF file, and opens it."""
    @property
    def path(self) -> str:
        """The index file's path."""
    def __len__(self) -> int:
        """The number of documents."""
    def info(self) -> dict[str, Any]:
        """documents, terms, postings, block_size, superblock_size, blocks, bytes, path."""
    def check(self) -> dict[str, int]:
        """Verifies the whole file; raises CorruptIndexError at the first problem."""
    def search(
        self,
        query: Union[Vector, Any],
        k: int = 10,
        algorithm: str = "bmp",
        *,
        filter: Optional[Sequence[DocId]] = None,
        vocabulary: Optional[Sequence[str]] = None,
        **params: float,
    ) -> list[Tuple[str, float]]:
        """The top ``k`` hits as (id, score), best first."""
    def search_batch(
        self,
        queries: Union[Sequence[Union[Vector, Any]], Any],
        k: int = 10,
        algorithm: str = "bmp",
        *,
        threads: Optional[int] = None,
        vocabulary: Optional[Sequence[str]] = None,
        **params: float,
    ) -> Tuple[npt.NDArray[np.str_], npt.NDArray[np.float32]]:
        """(ids, scores) of shape (len(queries), k): ids as <U strings ("" past a query's last
        hit), scores float32 (NaN there)."""
    @staticmethod
    def build_lexical(
        path: PathLike,
        corpus: PathLike,
        *,
        encoder: Optional["TextEncoder"] = None,
        k1: float = 1.2,
        b: float = 0.75,
        block_size: int = ...,
        superblock_size: int = ...,
        reorder: str = "none",
    ) -> "Index":
        """An index of the BM25 weights of a BEIR corpus's text (and the encoder's vectors,
        for hybrid queries)."""
    def search_text(
        self,
        query: str,
        k: int = 10,
        algorithm: str = "bmp",
        *,
        encoder: Optional["TextEncoder"] = None,
        hybrid: Union[None, bool, float] = None,
        fusion: str = "linear",
        **params: float,
    ) -> list[Tuple[str, float]]:
        """BM25 (no encoder), the encoder's vector, or with hybrid=λ: (1 - λ)·learned/L +
        λ·bm25/B in one pass (fusion="linear"), or weighted reciprocal rank fusion ("rrf")."""

class TextEncoder:
    """A sparse text encoder: SPLADE, or a decoder LLM through its LM head."""

    def __init__(
        self,
        model: PathLike,
        *,
        device: str = "cpu",
        dtype: str = "f32",
        batch_size: int = 32,
        max_length: Optional[int] = None,
        doc_top_k: Optional[int] = None,
        doc_min_weight: Optional[float] = None,
        query_instruction: Optional[str] = None,
    ) -> None:
        """Loads the model (OSError if missing, ValueError for a bad option)."""
    @property
    def kind(self) -> str:
        """"splade" or "llm-sparse"."""
    @property
    def vocabulary(self) -> list[str]:
        """The term of each column of the CSR output."""
    def encode_documents(
        self, texts: Sequence[Union[str, Mapping[str, str]]], *, output: str = "dict"
    ) -> Any:
        """Document vectors (pruned as asked), from str or BEIR {"title", "text"} documents:
        a list of {term: weight} dicts, or with output="csr" a scipy.sparse.csr_matrix
        (float32, columns = vocabulary)."""
    def encode_queries(self, texts: Sequence[str], *, output: str = "dict") -> Any:
        """Query vectors (never pruned), as encode_documents gives them."""

class Collection:
    """A collection directory opened for writing: logged writes, searchable segments."""

    @staticmethod
    def open(path: PathLike, *, block_size: int = ..., superblock_size: int = ...) -> "Collection":
        """Opens (or creates) the collection; ValueError when another writer holds it."""
    @property
    def path(self) -> str: ...
    @property
    def pending(self) -> int:
        """Writes logged and not yet applied by refresh()."""
    def __len__(self) -> int:
        """Live documents as of the last refresh."""
    def add(self, documents: Iterable[Tuple[DocId, Vector]]) -> int:
        """Logs new documents; ValueError (nothing logged) when an id is live already."""
    def upsert(self, documents: Iterable[Tuple[DocId, Vector]]) -> dict[str, int]:
        """Logs documents replacing live ones: {"added", "replaced"}."""
    def delete(self, ids: Iterable[DocId]) -> int:
        """Logs deletes; returns how many ids were live."""
    def refresh(self) -> dict[str, int]:
        """Applies the logged writes and merges: {"added", "deleted", "segments", "generation"}."""
    def compact(self) -> dict[str, int]:
        """One segment without deleted documents: {"segments_before", "dropped", "docs", "generation"}."""
    def search(
        self,
        query: Any,
        k: int = 10,
        algorithm: str = "bmp",
        *,
        vocabulary: Optional[Sequence[str]] = None,
        **params: float,
    ) -> list[Tuple[str, float]]:
        """The top k live documents across the segments as of the last refresh."""

class MultiVectorReranker:
    """Reorders a first stage's hits by Chamfer similarity of token embeddings."""

    def __init__(
        self,
        index: Index,
        store: PathLike,
        *,
        token_model: PathLike = "models/minilm-l6",
        max_length: int = 256,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None: ...
    @property
    def clusters(self) -> str:
        """The store's clustering spec ("C8x32", ...)."""
    def rerank(
        self, query: str, hits: Sequence[Union[str, Tuple[str, float]]], depth: int = 100
    ) -> list[Tuple[str, float]]:
        """The head of hits by Chamfer score, then the rest in their order."""

def build_multivector_stores(
    index: Index,
    corpus: PathLike,
    output: PathLike,
    clusters: Sequence[str] = ("C8x32",),
    *,
    token_model: PathLike = "models/minilm-l6",
    max_length: int = 256,
    batch_size: int = 32,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """One store per clustering spec in output/<spec>.mvec: [{"spec", "path", "docs",
    "vectors", "bytes"}]."""

def evaluate_dataset(
    dataset: PathLike,
    model: PathLike,
    *,
    split: str = "test",
    algorithms: Sequence[str] = ("bmp",),
    k: int = 1000,
    bm25: bool = False,
    bm25_k1: float = 1.2,
    bm25_b: float = 0.75,
    hybrid: Union[None, float, Sequence[float]] = None,
    fusion: Union[None, str, Sequence[str]] = None,
    reorder: Optional[str] = None,
    work_dir: Optional[PathLike] = None,
    metrics: Optional[Sequence[str]] = None,
    relevance_level: int = 1,
    missing_as_zero: bool = False,
    runs: bool = False,
    device: str = "cpu",
    dtype: str = "f32",
    batch_size: int = 32,
    max_length: Optional[int] = None,
    doc_top_k: Optional[int] = None,
    doc_min_weight: Optional[float] = None,
    query_instruction: Optional[str] = None,
) -> list[dict[str, Any]]:
    """bmp-index eval --dataset's pipeline: [{"system", "tag", "metrics", "latency_us", "run"?}]."""

def evaluate(
    run: Mapping[str, Any],
    qrels: Union[Mapping[str, Mapping[str, int]], PathLike],
    metrics: Optional[Sequence[str]] = None,
    *,
    relevance_level: int = 1,
    missing_as_zero: bool = False,
    per_query: bool = False,
) -> dict[str, Any]:
    """trec_eval's measures of ``run`` ({query: {doc: score}} or {query: [(doc, score)]})
    against ``qrels``: {metric: mean}, or {query: {metric: value}} with per_query."""
