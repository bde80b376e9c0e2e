"""bmp.evaluate against pytrec_eval, and a BEIR evaluation through bmp.beir.BmpRetriever against
`bmp-index eval` on the same dataset."""

import json
import random
import subprocess

import pytest

import bmp
from bmp.beir import BmpRetriever
from test_encoder import MODEL
from test_index import SHARED, cli, missing


def random_run_and_qrels(seed):
    rng = random.Random(seed)
    run, qrels = {}, {}
    for q in range(30):
        qid = f"q{q}"
        docs = [f"d{d}" for d in rng.sample(range(300), 120)]
        run[qid] = {d: rng.choice([rng.random(), 0.5, 1.0]) for d in docs}
        judged = rng.sample(range(300), 15)
        qrels[qid] = {f"d{d}": rng.choice([0, 1, 1, 2, 3]) for d in judged}
    qrels["unjudged-in-run"] = {"d1": 1}
    return run, qrels


def test_measures_equal_pytrec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")  # in the package's [test] extra
    names = {"ndcg_cut_10": "nDCG@10", "recall_100": "R@100", "map": "MAP", "P_10": "P@10",
             "recip_rank": "MRR"}
    for seed in range(5):
        run, qrels = random_run_and_qrels(seed)
        theirs = pytrec_eval.RelevanceEvaluator(qrels, set(names)).evaluate(run)
        ours = bmp.evaluate(run, qrels, list(names.values()), per_query=True)
        assert set(ours) == set(theirs)
        for qid, values in theirs.items():
            for trec, paper in names.items():
                assert ours[qid][paper] == pytest.approx(values[trec], abs=1e-9), (qid, trec)
        means = bmp.evaluate(run, qrels, list(names.values()))
        for trec, paper in names.items():
            want = sum(v[trec] for v in theirs.values()) / len(theirs)
            assert means[paper] == pytest.approx(want, abs=1e-9)


def test_run_and_qrels_forms(tmp_path):
    run = {"q1": [("a", 2.0), ("b", 1.0)]}
    qrels_file = tmp_path / "qrels.tsv"
    qrels_file.write_text("query-id\tcorpus-id\tscore\nq1\tb\t1\n")
    assert bmp.evaluate(run, str(qrels_file), ["MRR@10"]) == {"MRR@10": 0.5}
    assert bmp.evaluate(run, qrels_file, ["recip_rank"]) == {"recip_rank": 0.5}
    assert bmp.evaluate({"q1": {"a": 2.0, "b": 1.0}}, {"q1": {"b": 1}}, ["P@1"]) == {"P@1": 0.0}
    assert set(bmp.evaluate(run, {"q1": {"b": 1}})) == {"nDCG@10", "MRR@10", "R@100", "R@1000",
                                                        "MAP"}
    with pytest.raises(ValueError, match="unknown measure"):
        bmp.evaluate(run, {"q1": {"b": 1}}, ["accuracy"])
    with pytest.raises(ValueError, match="grade"):
        bmp.evaluate(run, {"q1": {"b": "high"}})
    with pytest.raises(OSError):
        bmp.evaluate(run, str(tmp_path / "missing.tsv"))


def test_a_beir_evaluation_equals_the_cli(tmp_path):
    dataset = SHARED / "cranfield"
    if not dataset.exists():
        missing("../shared/data is not here")
    if not MODEL.exists():
        missing("models/splade-tiny is not here (scripts/setup-models.sh fetches it)")
    runs = tmp_path / "runs"
    subprocess.run([cli(), "eval", "--dataset", str(dataset), "--model", str(MODEL),
                    "--k", "100", "--bm25", "--output", str(runs), "--work-dir",
                    str(tmp_path / "w")],
                   check=True, capture_output=True)
    run_file = runs / "splade-bmp.trec"
    # The same pipeline from Python (over the vectors and index the CLI cached): the same runs.
    systems = bmp.evaluate_dataset(dataset, MODEL, k=100, bm25=True, work_dir=tmp_path / "w",
                                   runs=True, metrics=["nDCG@10", "R@100"])
    assert [s["system"] for s in systems] == ["splade bmp", "bm25 (k1=1.2,b=0.75)"]
    for system in systems:
        cli_run = {}
        with open(runs / f"{system['tag']}.trec") as f:
            for line in f:
                qid, _, doc, _, score, _ = line.split()
                cli_run.setdefault(qid, []).append(doc)
        assert {q: [d for d, _ in hits] for q, hits in system["run"].items()} == cli_run
        want = bmp.evaluate(system["run"], dataset / "qrels" / "test.tsv", ["nDCG@10", "R@100"])
        assert system["metrics"] == pytest.approx(want, abs=1e-12)
        assert system["latency_us"]["p50"] > 0
    with pytest.raises(ValueError, match="k1"):
        bmp.evaluate_dataset(dataset, MODEL, bm25=True, bm25_k1=-1.0, work_dir=tmp_path / "w")
    with pytest.raises(OSError, match="no-such-model"):
        bmp.evaluate_dataset(dataset, tmp_path / "no-such-model", work_dir=tmp_path / "w2")
    # BEIR's GenericDataLoader, by hand: corpus, queries, and test qrels.
    with open(dataset / "corpus.jsonl") as f:
        corpus = {d["_id"]: {"title": d.get("title", ""), "text": d["text"]}
                  for d in map(json.loads, f)}
    qrels = {}
    with open(dataset / "qrels" / "test.tsv") as f:
        next(f)
        for line in f:
            qid, doc, grade = line.split("\t")
            qrels.setdefault(qid, {})[doc] = int(grade)
    with open(dataset / "queries.jsonl") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f) if q["_id"] in qrels}
    retriever = BmpRetriever(bmp.TextEncoder(MODEL), tmp_path / "py.bmp")
    results = retriever.search(corpus, queries, top_k=100, score_function="dot")
    assert len(results) == len(queries)
    cli_run = {}
    with open(run_file) as f:
        for line in f:
            qid, _, doc, _, score, _ = line.split()
            cli_run.setdefault(qid, {})[doc] = float(score)
    metrics = ["nDCG@10", "MRR@10", "R@100"]
    ours, theirs = bmp.evaluate(results, qrels, metrics), bmp.evaluate(cli_run, qrels, metrics)
    for m in metrics:
        assert ours[m] == pytest.approx(theirs[m], abs=1e-9), m
    assert ours["nDCG@10"] > 0.2
    for qid, hits in cli_run.items():
        top = sorted(hits, key=lambda d: -hits[d])[:10]
        assert set(results[qid]) >= set(top[:5]), qid
