"""bmp: learned-sparse retrieval with Block-Max Pruning.

Build an index from ``(id, {term: weight})`` pairs, a SciPy CSR matrix with its vocabulary, or a
JSONL / CIFF file; open it; search it one query at a time or in parallel batches::

    import bmp

    index = bmp.Index.build("docs.bmp", [("d1", {"flow": 1.2, "jet": 0.4}),
                                         ("d2", {"jet": 2.0})])
    index.search({"jet": 1.0}, k=10)          # [("d2", 2.0), ("d1", 0.4)]
    ids, scores = index.search_batch([{"jet": 1.0}, {"flow": 1.0}], k=10)

Text goes through ``bmp.TextEncoder(model_dir)`` (SPLADE, or a decoder LLM)::

    encoder = bmp.TextEncoder("models/splade-tiny")
    vectors = encoder.encode_documents(["a first passage", {"title": "T", "text": "a second"}])
    index.search(encoder.encode_queries(["what is a jet?"])[0])

``encode_documents(texts, output="csr")`` gives a SciPy CSR matrix whose columns are
``encoder.vocabulary``, which ``Index.build`` takes as it is.

A ``bmp.Collection`` takes adds, upserts and deletes while it is searched::

    collection = bmp.Collection.open("live")
    collection.upsert([("d3", {"jet": 0.7})])
    collection.delete(["d1"])
    collection.refresh()
    collection.search({"jet": 1.0}, k=10)

``bmp.build_multivector_stores`` and ``bmp.MultiVectorReranker`` rerank a first stage's hits by
Chamfer similarity of token embeddings (CRISP-style clustered).

Runs are scored as trec_eval scores them, ``bmp.evaluate(run, qrels, ["nDCG@10", "R@100"])``;
``bmp.evaluate_dataset("scifact", "models/splade-tiny", bm25=True)`` runs ``bmp-index eval
--dataset``'s pipeline; and ``bmp.beir.BmpRetriever`` plugs into the ``beir`` package's
``EvaluateRetrieval``.

Every algorithm in ``bmp.ALGORITHMS`` returns exactly the exhaustive top-k with its default
parameters; scores are dot products in the model's units.
"""

from ._bmp import (
    ALGORITHMS,
    Collection,
    CorruptIndexError,
    Index,
    MultiVectorReranker,
    TextEncoder,
    build_multivector_stores,
    evaluate,
    evaluate_dataset,
)

#: The same class as TextEncoder: it loads a SPLADE directory, or a decoder LLM, by what the path
#: holds.
SpladeEncoder = TextEncoder

__all__ = [
    "ALGORITHMS",
    "Collection",
    "CorruptIndexError",
    "Index",
    "MultiVectorReranker",
    "SpladeEncoder",
    "TextEncoder",
    "build_multivector_stores",
    "evaluate",
    "evaluate_dataset",
]
