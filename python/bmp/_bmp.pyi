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
    ) -> Tuple[npt.NDArray[np.object_], npt.NDArray[np.float32]]:
        """(ids, scores) of shape (len(queries), k); None / NaN past a query's last hit."""

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
    ) -> None:
        """Loads the model (OSError if missing, ValueError for a bad option)."""
    @property
    def kind(self) -> str:
        """"splade" or "llm-sparse"."""
    def encode_documents(
        self, texts: Sequence[Union[str, Mapping[str, str]]]
    ) -> list[dict[str, float]]:
        """Document vectors (pruned as asked), from str or BEIR {"title", "text"} documents."""
    def encode_queries(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Query vectors (never pruned)."""

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
