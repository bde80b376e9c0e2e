"""BM25 and hybrid indexes from Python against `bmp-index build --lexical-only`,
`build --model M --lexical` and `search [--hybrid λ]` on real text."""

import json
import subprocess

import pytest

import bmp
from test_encoder import MODEL
from test_index import SHARED, cli, missing

TEXTS = ["flow over a flat plate", "heat transfer in hypersonic flow", "buckling of shells"]


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory):
    corpus = SHARED / "cranfield" / "corpus.jsonl"
    if not corpus.exists():
        missing("../shared/data is not here")
    d = tmp_path_factory.mktemp("lex")
    with open(corpus) as f, open(d / "corpus.jsonl", "w") as out:
        for _ in range(80):
            out.write(next(f))
    with open(d / "queries.jsonl", "w") as f:
        for i, t in enumerate(TEXTS):
            f.write(json.dumps({"_id": f"q{i}", "text": t}) + "\n")
    return d


def cli_run(*args):
    out = subprocess.run([cli(), "search", *map(str, args)], check=True, capture_output=True,
                         text=True).stdout
    run = {}
    for line in out.splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, []).append((doc, float(score)))
    return run


def test_bm25_index_answers_as_the_cli(cranfield):
    d = cranfield
    subprocess.run([cli(), "build", "--lexical-only", "--input", d / "corpus.jsonl", "--output",
                    d / "cli.bmp", "--bm25-k1", "0.9", "--bm25-b", "0.4"],
                   check=True, capture_output=True)
    index = bmp.Index.build_lexical(d / "py.bmp", d / "corpus.jsonl", k1=0.9, b=0.4)
    assert index.info()["documents"] == 80
    want = cli_run("--index", d / "cli.bmp", "--queries", d / "queries.jsonl", "--k", "10")
    for i, text in enumerate(TEXTS):
        got = index.search_text(text, k=10)
        assert [doc for doc, _ in got] == [doc for doc, _ in want[f"q{i}"]], text
        assert [s for _, s in got] == pytest.approx([s for _, s in want[f"q{i}"]], rel=1e-4)
        assert index.search_text(text, k=10, algorithm="exhaustive") == got
    with pytest.raises(ValueError, match="encoder"):
        index.search_text("flow", hybrid=0.5)
    with pytest.raises(ValueError, match="b must lie"):
        bmp.Index.build_lexical(d / "bad.bmp", d / "corpus.jsonl", b=1.5)


def test_hybrid_index_answers_as_the_cli(cranfield):
    if not MODEL.exists():
        missing("models/splade-tiny is not here (scripts/setup-models.sh fetches it)")
    d = cranfield
    subprocess.run([cli(), "build", "--model", MODEL, "--lexical", "--input",
                    d / "corpus.jsonl", "--output", d / "hyb-cli.bmp"],
                   check=True, capture_output=True)
    encoder = bmp.TextEncoder(MODEL)
    index = bmp.Index.build_lexical(d / "hyb.bmp", d / "corpus.jsonl", encoder=encoder)
    for lam, fusion, flag in [(0.3, "linear", ["--hybrid", "0.3"]), (True, "linear", ["--hybrid"]),
                              (0.3, "rrf", ["--hybrid", "0.3", "--fusion", "rrf"])]:
        want = cli_run("--index", d / "hyb-cli.bmp", "--queries", d / "queries.jsonl", "--model",
                       MODEL, "--k", "10", *flag)
        for i, text in enumerate(TEXTS):
            got = index.search_text(text, k=10, encoder=encoder, hybrid=lam, fusion=fusion)
            assert [doc for doc, _ in got] == [doc for doc, _ in want[f"q{i}"]], (text, lam)
            assert [s for _, s in got] == pytest.approx([s for _, s in want[f"q{i}"]], rel=1e-4)
            assert all(0.0 < s <= 1.0 + 1e-6 for _, s in got), got
    with pytest.raises(ValueError, match="unknown fusion"):
        index.search_text("flow", encoder=encoder, hybrid=0.3, fusion="sum")
    # SPLADE alone over the same index: the encoder's query vector.
    alone = index.search_text(TEXTS[0], k=5, encoder=encoder)
    assert alone == index.search(encoder.encode_queries([TEXTS[0]])[0], k=5)
    plain = bmp.Index.build(d / "plain.bmp", [("a", {"flow": 1.0})])
    with pytest.raises(ValueError, match="no lexical field"):
        plain.search_text("flow")
    with pytest.raises(ValueError, match="no lexical field"):
        plain.search_text("flow", encoder=encoder, hybrid=0.5)


def test_hybrid_evaluation_equals_the_cli(cranfield, tmp_path):
    if not MODEL.exists():
        missing("models/splade-tiny is not here (scripts/setup-models.sh fetches it)")
    dataset = tmp_path / "mini"
    (dataset / "qrels").mkdir(parents=True)
    for name in ["corpus.jsonl"]:
        (dataset / name).write_text((cranfield / name).read_text())
    for name in ["queries.jsonl", "qrels/test.tsv"]:
        (dataset / name).write_text((SHARED / "cranfield" / name).read_text())
    runs = tmp_path / "runs"
    subprocess.run([cli(), "eval", "--dataset", dataset, "--model", MODEL, "--k", "100",
                    "--hybrid", "0.3", "--fusion", "linear,rrf", "--output", runs,
                    "--work-dir", tmp_path / "w"], check=True, capture_output=True)
    systems = bmp.evaluate_dataset(dataset, MODEL, k=100, hybrid=0.3, fusion=["linear", "rrf"],
                                   work_dir=tmp_path / "w", runs=True)
    assert [s["system"] for s in systems] == ["splade bmp", "hybrid 0.3 bmp",
                                              "hybrid rrf 0.3 bmp"]
    for system in systems:
        cli_run = {}
        with open(runs / f"{system['tag']}.trec") as f:
            for line in f:
                qid, _, doc, _, score, _ = line.split()
                cli_run.setdefault(qid, []).append(doc)
        assert {q: [d for d, _ in hits] for q, hits in system["run"].items()} == cli_run
    with pytest.raises(ValueError, match="lexical weight"):
        bmp.evaluate_dataset(dataset, MODEL, hybrid=1.5, work_dir=tmp_path / "w")
    with pytest.raises(ValueError, match="give hybrid"):
        bmp.evaluate_dataset(dataset, MODEL, fusion="rrf", work_dir=tmp_path / "w")
