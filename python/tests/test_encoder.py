"""The text encoder from Python against `bmp-index encode` and `search --model`, with the real
SPLADE model (fetched by scripts/setup-models.sh)."""

import json
import subprocess

import pytest

import bmp
from test_index import ROOT, SHARED, cli, missing

MODEL = ROOT / "models" / "splade-tiny"


@pytest.fixture(scope="module")
def encoder():
    if not MODEL.exists():
        missing("models/splade-tiny is not here (scripts/setup-models.sh fetches it)")
    return bmp.TextEncoder(MODEL)


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory):
    corpus = SHARED / "cranfield" / "corpus.jsonl"
    if not corpus.exists():
        missing("../shared/data is not here")
    with open(corpus) as f:
        docs = [json.loads(next(f)) for _ in range(40)]
    path = tmp_path_factory.mktemp("cran") / "corpus.jsonl"
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    return docs, path


def test_documents_encode_as_the_cli_encodes_them(encoder, cranfield, tmp_path):
    docs, corpus = cranfield
    out = tmp_path / "vectors.jsonl"
    subprocess.run([cli(), "encode", "--model", str(MODEL), "--input", str(corpus),
                    "--output", str(out)], check=True, capture_output=True)
    with open(out) as f:
        expected = [json.loads(line) for line in f]
    assert encoder.kind == "splade"
    got = encoder.encode_documents(docs)
    assert len(got) == len(expected) == 40
    for vector, want in zip(got, expected):
        assert vector.keys() == want["vector"].keys()
        for term, weight in vector.items():
            assert weight == pytest.approx(want["vector"][term], rel=1e-5, abs=1e-6)


def test_text_search_answers_like_the_cli(encoder, cranfield, tmp_path):
    docs, corpus = cranfield
    binary = cli()
    index_path = tmp_path / "cran.bmp"
    subprocess.run([binary, "build", "--model", str(MODEL), "--input", str(corpus),
                    "--output", str(index_path)], check=True, capture_output=True)
    queries = tmp_path / "queries.jsonl"
    texts = ["flow over a flat plate", "heat transfer in hypersonic flow", "buckling of shells"]
    with open(queries, "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"_id": f"q{i}", "text": t}) + "\n")
    run = subprocess.run([binary, "search", "--index", str(index_path), "--model", str(MODEL),
                          "--queries", str(queries), "--k", "5"],
                         check=True, capture_output=True, text=True).stdout
    expected = {}
    for line in run.splitlines():
        qid, _, doc, _, score, _ = line.split()
        expected.setdefault(qid, []).append(doc)
    index = bmp.Index.open(index_path)
    # The same index from Python: the documents encoded here, built here.
    ours = bmp.Index.build(tmp_path / "py.bmp",
                           [(d["_id"], v) for d, v in zip(docs, encoder.encode_documents(docs))])
    for i, vector in enumerate(encoder.encode_queries(texts)):
        want = expected.get(f"q{i}", [])
        assert want, "the CLI found nothing"
        assert [d for d, _ in index.search(vector, k=5)] == want
        assert [d for d, _ in ours.search(vector, k=5)] == want


def test_encoder_errors(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        bmp.TextEncoder(tmp_path / "no-model")
    if not MODEL.exists():
        missing("models/splade-tiny is not here")
    with pytest.raises(ValueError, match="device"):
        bmp.TextEncoder(MODEL, device="tpu")
    with pytest.raises(ValueError, match="top_k"):
        bmp.TextEncoder(MODEL, doc_top_k=0)
    encoder = bmp.TextEncoder(MODEL, doc_top_k=5)
    assert all(len(v) <= 5 for v in encoder.encode_documents(["a long passage about aircraft wings and flow"]))
    assert len(encoder.encode_queries(["a long passage about aircraft wings and flow"])[0]) > 5
    with pytest.raises(ValueError, match="not one str"):
        encoder.encode_queries("a single string")
    with pytest.raises(ValueError, match="texts\\[1\\]"):
        encoder.encode_queries(["fine", 3])


def test_csr_output_builds_and_searches_as_the_dicts(encoder, cranfield, tmp_path):
    scipy = pytest.importorskip("scipy")  # in the package's [test] extra
    docs, _ = cranfield
    dicts = encoder.encode_documents(docs)
    matrix = encoder.encode_documents(docs, output="csr")
    vocabulary = encoder.vocabulary
    assert scipy.sparse.issparse(matrix) and matrix.dtype.name == "float32"
    assert matrix.shape == (len(docs), len(vocabulary))
    for row, vector in enumerate(dicts):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        got = {vocabulary[c]: float(w) for c, w in zip(matrix.indices[start:end],
                                                       matrix.data[start:end])}
        assert got == pytest.approx(vector)
    ids = [d["_id"] for d in docs]
    from_csr = bmp.Index.build(tmp_path / "csr.bmp", matrix, vocabulary=vocabulary, ids=ids)
    from_dicts = bmp.Index.build(tmp_path / "dicts.bmp", list(zip(ids, dicts)))
    texts = ["flow over a flat plate", "buckling of shells"]
    queries = encoder.encode_queries(texts, output="csr")
    for row, vector in enumerate(encoder.encode_queries(texts)):
        want = from_dicts.search(vector, k=10)
        assert from_csr.search(queries[row], k=10, vocabulary=vocabulary) == want
    with pytest.raises(ValueError, match="output"):
        encoder.encode_queries(texts, output="coo")


def test_the_query_instruction_goes_before_queries_only(encoder):
    instructed = bmp.TextEncoder(MODEL, query_instruction="aircraft wing: ")
    text = ["boundary layer flow"]
    assert instructed.encode_queries(text) == encoder.encode_queries(["aircraft wing: " + text[0]])
    assert instructed.encode_queries(text) != encoder.encode_queries(text)
    assert instructed.encode_documents(text) == encoder.encode_documents(text)
