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
