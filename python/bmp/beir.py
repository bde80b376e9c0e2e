"""A retriever for the ``beir`` package's ``EvaluateRetrieval``: encode the corpus with a sparse
text encoder, index it, answer the queries with rank-safe BMP::

    from beir.datasets.data_loader import GenericDataLoader
    from beir.retrieval.evaluation import EvaluateRetrieval
    import bmp
    from bmp.beir import BmpRetriever

    corpus, queries, qrels = GenericDataLoader("scifact").load(split="test")
    retriever = BmpRetriever(bmp.TextEncoder("models/splade-tiny"), "scifact.bmp")
    results = EvaluateRetrieval(retriever, score_function="dot").retrieve(corpus, queries)
    print(bmp.evaluate(results, qrels, ["nDCG@10", "R@100"]))

It needs no ``beir`` install of its own: ``search`` takes and returns BEIR's dicts.
"""

from typing import Any, Dict, Optional

from ._bmp import Index, TextEncoder

__all__ = ["BmpRetriever"]


class BmpRetriever:
    """Encodes a BEIR corpus with ``encoder``, builds an index at ``index_path`` (once per
    corpus), and answers queries with ``algorithm`` (any of ``bmp.ALGORITHMS``, its parameters
    as keywords)."""

    def __init__(
        self,
        encoder: TextEncoder,
        index_path: str,
        algorithm: str = "bmp",
        block_size: int = 8,
        reorder: str = "none",
        threads: Optional[int] = None,
        **params: float,
    ) -> None:
        self.encoder = encoder
        self.index_path = str(index_path)
        self.algorithm = algorithm
        self.block_size = block_size
        self.reorder = reorder
        self.threads = threads
        self.params = params
        self.index: Optional[Index] = None
        self._corpus_key: Optional[int] = None

    def index_corpus(self, corpus: Dict[str, Dict[str, str]]) -> Index:
        """Encodes ``corpus`` (``{doc_id: {"title", "text"}}``) and builds the index."""
        ids = list(corpus)
        vectors = self.encoder.encode_documents([corpus[d] for d in ids])
        self.index = Index.build(
            self.index_path,
            zip(ids, vectors),
            block_size=self.block_size,
            reorder=self.reorder,
        )
        self._corpus_key = id(corpus)
        return self.index

    def search(
        self,
        corpus: Dict[str, Dict[str, str]],
        queries: Dict[str, str],
        top_k: int,
        score_function: Any = None,
        **kwargs: Any,
    ) -> Dict[str, Dict[str, float]]:
        """BEIR's retriever interface: ``{query_id: {doc_id: score}}``, the top ``top_k`` of
        each query. Scores are dot products of the sparse vectors, whatever ``score_function``
        says."""
        if self.index is None or self._corpus_key != id(corpus):
            self.index_corpus(corpus)
        qids = list(queries)
        vectors = self.encoder.encode_queries([queries[q] for q in qids])
        ids, scores = self.index.search_batch(
            vectors, k=top_k, algorithm=self.algorithm, threads=self.threads, **self.params
        )
        results: Dict[str, Dict[str, float]] = {}
        for row, qid in enumerate(qids):
            hits: Dict[str, float] = {}
            for doc, score in zip(ids[row], scores[row]):
                if score != score:  # NaN: past the query's last hit
                    break
                hits[str(doc)] = float(score)
            results[qid] = hits
        return results
