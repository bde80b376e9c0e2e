"""The multi-vector stage from Python against `bmp-index multivec` and `search --multivec`, with
the real SPLADE and token models (fetched by scripts/setup-models.sh)."""

import json
import subprocess

import pytest

import bmp
from test_encoder import MODEL
from test_index import ROOT, SHARED, cli, missing

TOKENS = ROOT / "models" / "minilm-l6"


def test_stores_and_reranking_equal_the_cli(tmp_path):
    corpus_all = SHARED / "cranfield" / "corpus.jsonl"
    if not corpus_all.exists():
        missing("../shared/data is not here")
    if not MODEL.exists() or not TOKENS.exists():
        missing("models/ is not here (scripts/setup-models.sh fetches it)")
    corpus = tmp_path / "corpus.jsonl"
    with open(corpus_all) as f, open(corpus, "w") as out:
        for _ in range(60):
            out.write(next(f))
    binary = cli()
    index_path = tmp_path / "cran.bmp"
    subprocess.run([binary, "build", "--model", str(MODEL), "--input", str(corpus),
                    "--output", str(index_path)], check=True, capture_output=True)
    index = bmp.Index.open(index_path)

    stores = bmp.build_multivector_stores(index, corpus, tmp_path / "py", ["C4x8", "none"],
                                          token_model=TOKENS)
    assert [s["spec"] for s in stores] == ["C4x8", "none"]
    assert stores[0]["docs"] == 60 and stores[0]["vectors"] <= 60 * 8
    subprocess.run([binary, "multivec", "--index", str(index_path), "--corpus", str(corpus),
                    "--clusters", "C4x8", "--output", str(tmp_path / "cli"),
                    "--token-model", str(TOKENS)], check=True, capture_output=True)
    assert (tmp_path / "py" / "C4x8.mvec").read_bytes() == \
        (tmp_path / "cli" / "C4x8.mvec").read_bytes()

    texts = ["flow over a flat plate", "heat transfer in hypersonic flow", "buckling of shells"]
    queries = tmp_path / "queries.jsonl"
    with open(queries, "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"_id": f"q{i}", "text": t}) + "\n")
    run = subprocess.run([binary, "search", "--index", str(index_path), "--model", str(MODEL),
                          "--queries", str(queries), "--k", "30", "--multivec",
                          str(tmp_path / "cli" / "C4x8.mvec"), "--rerank-depth", "10",
                          "--token-model", str(TOKENS)],
                         check=True, capture_output=True, text=True).stdout
    expected = {}
    for line in run.splitlines():
        qid, _, doc, _, score, _ = line.split()
        expected.setdefault(qid, []).append((doc, float(score)))

    reranker = bmp.MultiVectorReranker(index, stores[0]["path"], token_model=TOKENS)
    assert reranker.clusters == "C4x8"
    encoder = bmp.TextEncoder(MODEL)
    for i, vector in enumerate(encoder.encode_queries(texts)):
        first = index.search(vector, k=30)
        got = reranker.rerank(texts[i], first, depth=10)
        want = expected[f"q{i}"]
        assert [d for d, _ in got] == [d for d, _ in want], texts[i]
        assert [s for _, s in got[:10]] == pytest.approx([s for _, s in want[:10]], abs=1e-4)
        assert sorted(d for d, _ in got) == sorted(d for d, _ in first)
        assert [d for d, _ in reranker.rerank(texts[i], [d for d, _ in first], 10)] == \
            [d for d, _ in got]

    with pytest.raises(ValueError, match="no document"):
        reranker.rerank("flow", [("not-a-doc", 1.0)])
    with pytest.raises(ValueError, match="C0x4"):
        bmp.build_multivector_stores(index, corpus, tmp_path / "bad", ["C0x4"],
                                     token_model=TOKENS)
    with pytest.raises(OSError):
        bmp.MultiVectorReranker(index, stores[0]["path"], token_model=tmp_path / "nothing")
    other = bmp.Index.build(tmp_path / "other.bmp", [("x", {"flow": 1.0})])
    with pytest.raises(ValueError):
        bmp.MultiVectorReranker(other, stores[0]["path"], token_model=TOKENS)
