"""The Python package against the engine it wraps: every algorithm against exhaustive scoring,
batches against single searches, the CLI's runs, every input form, and the errors."""

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import bmp

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def missing(what):
    """Skips a test whose input is missing, or fails it under CI=true (where it must be there)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required under CI=true)")
    pytest.skip(what)


def cli():
    """The bmp-index binary: $BMP_INDEX_BIN, or one built in the workspace's target."""
    explicit = os.environ.get("BMP_INDEX_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        path = ROOT / "target" / profile / "bmp-index"
        if path.exists():
            return str(path)
    missing("no bmp-index binary: build it or set BMP_INDEX_BIN")


def random_documents(n, vocab, seed):
    """`n` documents over `vocab` terms with few distinct weights (many ties)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        terms = rng.sample(range(vocab), rng.randint(1, min(12, vocab)))
        docs.append((f"doc{i}", {f"t{t}": float(rng.randint(1, 4)) for t in terms}))
    return docs


def random_queries(count, vocab, seed):
    rng = random.Random(seed)
    return [
        {f"t{t}": rng.choice([0.5, 1.0, 1.5, 2.0])
         for t in rng.sample(range(vocab + 5), rng.randint(1, 10))}
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    docs = random_documents(3000, 40, seed=7)
    path = tmp_path_factory.mktemp("ix") / "docs.bmp"
    return docs, bmp.Index.build(path, docs)


def test_build_info_and_check(collection):
    docs, index = collection
    assert len(index) == len(docs)
    info = index.info()
    assert info["documents"] == len(docs)
    assert info["postings"] == sum(len(v) for _, v in docs)
    assert info["block_size"] == 8
    assert info["bytes"] == os.path.getsize(index.path)
    report = index.check()
    assert report["documents"] == len(docs)
    assert report["postings"] == info["postings"]
    assert repr(index).startswith("bmp.Index(")


def test_scores_are_dot_products(tmp_path):
    index = bmp.Index.build(tmp_path / "x.bmp", [("a", {"x": 1.0, "y": 2.0}), ("b", {"y": 0.5})])
    hits = index.search({"x": 3.0, "y": 1.0})
    assert [h[0] for h in hits] == ["a", "b"]
    # The dot product of the weights as quantized (8-bit impacts): within a percent.
    assert hits[0][1] == pytest.approx(5.0, rel=1e-2)
    assert hits[1][1] == pytest.approx(0.5, rel=1e-2)


def test_every_algorithm_equals_exhaustive(collection):
    _, index = collection
    for q in random_queries(40, 40, seed=3):
        for k in (1, 10, 100):
            want = index.search(q, k=k, algorithm="exhaustive")
            for algorithm in bmp.ALGORITHMS:
                assert index.search(q, k=k, algorithm=algorithm) == want, (algorithm, k, q)


def test_approximate_parameters_go_through(collection):
    _, index = collection
    q = random_queries(1, 40, seed=5)[0]
    exact = {d for d, _ in index.search(q, k=50, algorithm="exhaustive")}
    approx = index.search(q, k=50, algorithm="bmp", alpha=0.5, beta=0.5)
    assert len(approx) <= 50
    assert {d for d, _ in approx} <= {d for d, _ in index.search(q, k=len(index))} | exact


def test_batch_equals_single(collection):
    _, index = collection
    queries = random_queries(200, 40, seed=11)
    for algorithm in ("bmp", "maxscore", "sp"):
        for threads in (None, 1, 2):
            ids, scores = index.search_batch(queries, k=20, algorithm=algorithm, threads=threads)
            assert ids.shape == (200, 20) and scores.shape == (200, 20)
            assert ids.dtype.kind == "U" and scores.dtype == np.float32
            for i, q in enumerate(queries):
                hits = index.search(q, k=20, algorithm=algorithm)
                assert list(ids[i, : len(hits)]) == [d for d, _ in hits]
                assert np.allclose(scores[i, : len(hits)], [s for _, s in hits], rtol=1e-6)
                assert all(x == "" for x in ids[i, len(hits):])
                assert np.isnan(scores[i, len(hits):]).all()


def test_filter_restricts_to_the_named_documents(collection):
    docs, index = collection
    allowed = [d for d, _ in docs[::7]] + ["no-such-doc"]
    q = random_queries(1, 40, seed=13)[0]
    everything = index.search(q, k=len(index), algorithm="exhaustive")
    want = [h for h in everything if h[0] in set(allowed)][:10]
    for algorithm in bmp.ALGORITHMS:
        assert index.search(q, k=10, algorithm=algorithm, filter=allowed) == want


def test_csr_and_files_build_the_same_index(tmp_path, collection):
    sparse = pytest.importorskip("scipy.sparse")  # in the package's [test] extra
    docs, index = collection
    vocabulary = sorted({t for _, v in docs for t in v})
    column = {t: j for j, t in enumerate(vocabulary)}
    rows, cols, vals = [], [], []
    for i, (_, v) in enumerate(docs):
        for t, w in v.items():
            rows.append(i)
            cols.append(column[t])
            vals.append(w)
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocabulary)))
    from_csr = bmp.Index.build(
        tmp_path / "csr.bmp", matrix, vocabulary=vocabulary, ids=[d for d, _ in docs]
    )
    jsonl = tmp_path / "docs.jsonl"
    with open(jsonl, "w") as f:
        for d, v in docs:
            f.write(json.dumps({"id": d, "vector": v}) + "\n")
    from_file = bmp.Index.build(tmp_path / "file.bmp", str(jsonl))
    queries = random_queries(30, 40, seed=17)
    for q in queries:
        want = index.search(q, k=10)
        assert from_csr.search(q, k=10) == want
        assert from_file.search(q, k=10) == want
    # Queries as sparse rows, and as one matrix.
    q_rows, q_cols, q_vals = [], [], []
    for i, q in enumerate(queries):
        for t, w in q.items():
            if t in column:
                q_rows.append(i)
                q_cols.append(column[t])
                q_vals.append(w)
    q_matrix = sparse.csr_matrix((q_vals, (q_rows, q_cols)), shape=(len(queries), len(vocabulary)))
    ids, _ = index.search_batch(q_matrix, k=10, vocabulary=vocabulary)
    for i, q in enumerate(queries):
        want = index.search(q, k=10)
        assert list(ids[i, : len(want)]) == [d for d, _ in want]
        assert index.search(q_matrix[i], k=10, vocabulary=vocabulary) == want


def test_reordered_index_answers_the_same(tmp_path, collection):
    docs, index = collection
    reordered = bmp.Index.build(tmp_path / "bp.bmp", docs, reorder="bp", block_size=16)
    assert reordered.info()["block_size"] == 16
    for q in random_queries(30, 40, seed=19):
        got, want = reordered.search(q, k=10), index.search(q, k=10)
        # Ties go by index order, which the reordering changed: the same scores, and the same
        # documents above the last one.
        assert [s for _, s in got] == [s for _, s in want]
        if want:
            last = want[-1][1]
            assert {d for d, s in got if s > last} == {d for d, s in want if s > last}


def test_search_equals_the_cli_run(tmp_path):
    binary = cli()
    docs = tmp_path / "docs.jsonl"
    queries = tmp_path / "queries.jsonl"
    subprocess.run(
        [binary, "synth", "--docs", "4000", "--queries", "50", "--seed", "5",
         "--output-docs", str(docs), "--output-queries", str(queries)],
        check=True, capture_output=True,
    )
    index_path = tmp_path / "synth.bmp"
    subprocess.run([binary, "build", "--input", str(docs), "--output", str(index_path)],
                   check=True, capture_output=True)
    run = subprocess.run(
        [binary, "search", "--index", str(index_path), "--queries", str(queries), "--k", "10"],
        check=True, capture_output=True, text=True,
    ).stdout
    expected = {}
    for line in run.splitlines():
        qid, _, doc, rank, score, _ = line.split()
        expected.setdefault(qid, []).append((doc, float(score)))
    index = bmp.Index.open(index_path)
    built = bmp.Index.build(tmp_path / "py.bmp", str(docs))
    with open(queries) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 50
    for record in records:
        want = expected.get(str(record["id"]), [])
        for ix in (index, built):
            got = ix.search(record["vector"], k=10)
            assert [d for d, _ in got] == [d for d, _ in want]
            assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-4)


def test_toy_ciff_builds_like_the_cli(tmp_path):
    ciff = SHARED / "ciff-toy" / "toy-complete-20200309.ciff.gz"
    if not ciff.exists():
        missing("../shared/data is not here")
    binary = cli()
    cli_index = tmp_path / "cli.bmp"
    subprocess.run([binary, "build", "--input", str(ciff), "--output", str(cli_index)],
                   check=True, capture_output=True)
    ours = bmp.Index.build(tmp_path / "py.bmp", str(ciff))
    theirs = bmp.Index.open(cli_index)
    assert ours.info()["documents"] == theirs.info()["documents"]
    assert ours.info()["postings"] == theirs.info()["postings"]
    assert ours.search({"text": 1.0}, k=5)
    for term in ("text", "head", "simpl", "veri", "content"):
        assert ours.search({term: 1.0}, k=5) == theirs.search({term: 1.0}, k=5)


def test_errors_are_python_exceptions(tmp_path, collection):
    _, index = collection
    with pytest.raises(ValueError, match="algorithm"):
        index.search({"t1": 1.0}, algorithm="fast")
    with pytest.raises(ValueError, match="alpha"):
        index.search({"t1": 1.0}, alpha=2.0)
    with pytest.raises(ValueError, match="mu"):
        index.search({"t1": 1.0}, algorithm="bmp", mu=0.5)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search({"t1": 1.0}, k=0)
    with pytest.raises(ValueError, match="weight"):
        index.search({"t1": "heavy"})
    with pytest.raises(ValueError, match="threads"):
        index.search_batch([{"t1": 1.0}], threads=0)
    with pytest.raises(ValueError, match="documents\\[1\\]"):
        bmp.Index.build(tmp_path / "bad.bmp", [("a", {"x": 1.0}), ("b", {"x": -1.0})])
    with pytest.raises(ValueError, match="documents\\[0\\]"):
        bmp.Index.build(tmp_path / "bad.bmp", ["not a pair"])
    with pytest.raises(ValueError, match="no documents"):
        bmp.Index.build(tmp_path / "empty.bmp", [])
    with pytest.raises(ValueError, match="block"):
        bmp.Index.build(tmp_path / "bs.bmp", [("a", {"x": 1.0})], block_size=3)
    with pytest.raises(ValueError, match="reorder"):
        bmp.Index.build(tmp_path / "r.bmp", [("a", {"x": 1.0})], reorder="random")
    assert not (tmp_path / "bad.bmp").exists()
    with pytest.raises(OSError):
        bmp.Index.open(tmp_path / "missing.bmp")
    garbage = tmp_path / "garbage.bmp"
    garbage.write_bytes(b"\0" * 4096)
    with pytest.raises(bmp.CorruptIndexError):
        bmp.Index.open(garbage)
    # A damaged copy of a good index: open refuses it or check finds it.
    damaged = tmp_path / "damaged.bmp"
    shutil.copy(index.path, damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(bmp.CorruptIndexError):
        bmp.Index.open(damaged).check()
    jsonl = tmp_path / "broken.jsonl"
    jsonl.write_text('{"id": "a", "vector": {"x": 1}}\n{"id": "b", "vector": [1]}\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        bmp.Index.build(tmp_path / "j.bmp", str(jsonl))
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match="vocabulary"):
        bmp.Index.build(tmp_path / "c.bmp", sparse.csr_matrix(np.eye(2)))
    with pytest.raises(ValueError, match="vocabulary has 1 terms"):
        bmp.Index.build(tmp_path / "c.bmp", sparse.csr_matrix(np.eye(2)), vocabulary=["a"])
    with pytest.raises(ValueError, match="vocabulary"):
        index.search(sparse.csr_matrix(np.eye(1)))


def test_batch_ids_keep_any_unicode(tmp_path):
    index = bmp.Index.build(tmp_path / "u.bmp", [("é", {"x": 1.0}), ("日本語の文書", {"x": 3.0}),
                                                ("😀", {"x": 2.0}), ("plain", {"y": 1.0})])
    ids, scores = index.search_batch([{"x": 1.0}, {"y": 1.0}, {"nothing": 1.0}], k=3)
    assert ids.tolist() == [["日本語の文書", "😀", "é"], ["plain", "", ""], ["", "", ""]]
    assert scores[0].tolist() == pytest.approx([3.0, 2.0, 1.0], rel=1e-2)
    assert np.isnan(scores[2]).all()
