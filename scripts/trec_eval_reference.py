#!/usr/bin/env python3
"""Reference values for bmp-eval's metrics, computed with pytrec_eval (trec_eval 9.0.8 inside).

Builds deterministic pseudo-random runs (fixed seed) over the real qrels of Cranfield (graded 1-4,
some 0) and TREC DL 2019 passage (graded 0-3), plus a small hand-written edge-case run, evaluates
them with pytrec_eval at relevance levels 1 and 2, and writes everything the Rust test
`eval/tests/trec_eval_crosscheck.rs` needs under eval/tests/fixtures/ (the test reads the qrels
themselves from the data directory, named in the JSON as cranfield.qrels.tsv and dl19.qrels.tsv):

  trec_eval_reference.json   per-query values and means of every case
  cranfield.run.trec.gz      generated runs, `qid Q0 docid rank score tag`
  dl19.run.trec.gz
  edge.qrels.trec, edge.run.trec

The runs are meant to be hard: many exact score ties (trec_eval orders ties by docid descending,
byte-wise, and ignores the rank column, so the file lists tied documents in a different order),
negative and zero scores, unjudged and judged-non-relevant documents, relevant documents placed
beyond rank 100 or not retrieved at all, scores that differ only beyond single precision (trec_eval
9.x, inside pytrec_eval, stores scores as C `float`, so these tie), queries with no relevant document retrieved, ranking
depths from 3 to 1,400, judged queries missing from the run and run queries missing from the
qrels.

MRR@10 is trec_eval's recip_rank on each ranking truncated to 10 documents in trec_eval's order;
ir_measures' RR@10 (its MS MARCO provider) is computed too on the same rankings and must agree.
Note that ir_measures, given the tied scores themselves, orders ties by docid *ascending* and so
can differ from trec_eval on tied runs; its pytrec_eval provider has no cut RR.

Usage: pip install pytrec_eval-terrier ir-measures; python3 scripts/trec_eval_reference.py
       [--data ../shared/data] [--out eval/tests/fixtures]
"""

import argparse
import csv
import gzip
import io
import json
import os
import random
import sys
from importlib import metadata

import numpy
import pytrec_eval

SEED = 20240611
TAG = "synthetic"

# Paper name (parsed by bmp_eval::Measure) -> pytrec_eval key.
MEASURES = {
    "nDCG@5": "ndcg_cut_5",
    "nDCG@10": "ndcg_cut_10",
    "nDCG@100": "ndcg_cut_100",
    "nDCG@1000": "ndcg_cut_1000",
    "MRR": "recip_rank",
    "R@10": "recall_10",
    "R@100": "recall_100",
    "R@1000": "recall_1000",
    "P@10": "P_10",
    "MAP": "map",
    "MAP@10": "map_cut_10",
    "MAP@100": "map_cut_100",
    "MAP@1000": "map_cut_1000",
}
PYTREC_MEASURES = {
    "ndcg_cut.5,10,100,1000",
    "recip_rank",
    "recall.10,100,1000",
    "P.10",
    "map",
    "map_cut.10,100,1000",
}


def read_beir_qrels(path):
    qrels = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)
        for q, d, r in rows:
            qrels.setdefault(q, {})[d] = int(r)
    return qrels


def write_gz(path, text):
    # mtime=0 and no file name in the header: the same input gives the same bytes.
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(text.encode("utf-8"))


def as_float32(x):
    """trec_eval 9.x keeps scores as C `float`: round to single precision (overflow to inf)."""
    with numpy.errstate(over="ignore", under="ignore"):
        return float(numpy.float32(x))


def trec_eval_order(hits):
    """Score (as float32) descending, then docid descending byte-wise (comp_sim_docno)."""
    return sorted(
        hits.items(), key=lambda h: (as_float32(h[1]), h[0].encode("utf-8")), reverse=True
    )


def make_run(rng, qrels, unjudged, depths, tie_levels, offset, jitter=0.0):
    """One pseudo-random ranking per judged query; returns {qid: {docid: score}} and the file
    lines (in an order that differs from trec_eval's on ties)."""
    run = {}
    qids = sorted(qrels)
    skipped = set(rng.sample(qids, max(1, len(qids) // 30)))
    for qid in qids:
        if qid in skipped:
            continue  # judged query absent from the run
        judged = qrels[qid]
        depth = rng.choice(depths)
        mode = rng.random()
        docs = {}
        for d, r in judged.items():
            if mode < 0.08 and r > 0:
                continue  # nothing relevant retrieved
            if rng.random() < (0.85 if r > 0 else 0.5):
                if r > 0 and mode < 0.2:
                    latent = rng.uniform(0.0, 0.45)  # relevant but deep (often beyond 100)
                elif r > 0:
                    latent = rng.random() ** (1.0 / (1 + r))
                else:
                    latent = rng.random() ** 1.5
                docs[d] = latent
        attempts = 0
        while len(docs) < depth and attempts < 20 * depth:  # Cranfield has only 1,400 docs
            attempts += 1
            d = unjudged(rng)
            if d not in judged and d not in docs:
                docs[d] = rng.random() ** 2
        ranked = sorted(docs.items(), key=lambda kv: -kv[1])[:depth]
        hits = {}
        for d, latent in ranked:
            # Quantize to a few levels per query: many exact ties, some negative, some zero.
            level = round(latent * tie_levels)
            score = level / tie_levels * 10.0 - offset
            if jitter and rng.random() < 0.3:
                # Distinct as double, equal as float: trec_eval 9 sees a tie.
                score += jitter * rng.randint(1, 9)
            hits[d] = score
        run[qid] = hits
    # Run queries without judgments: ignored by evaluation.
    run["999999"] = {"1": 1.0, "2": 0.5}
    return run


def run_lines(rng, run):
    lines = []
    for qid in sorted(run):
        # A typical system's order: score descending, ties by docid ascending (the opposite of
        # trec_eval's), and for some queries the lines shuffled altogether.
        hits = sorted(run[qid].items(), key=lambda h: (-h[1], h[0].encode("utf-8")))
        if rng.random() < 0.1:
            rng.shuffle(hits)
        for rank, (d, s) in enumerate(hits, start=1):
            lines.append(f"{qid} Q0 {d} {rank} {s!r} {TAG}\n")
    return "".join(lines)


def edge_case():
    """Small hand-written qrels and run for the corners of trec_eval's rules."""
    qrels_lines = [
        # e1: judged, but nothing relevant (evaluated, scores 0)
        "e1 0 a 0", "e1 0 b 0",
        # e2: negative grade = in pool but unjudged; never relevant, no gain
        "e2 0 a -1", "e2 0 b 1", "e2 0 c 2",
        # e3: byte-wise docid order on ties ("9" > "10" > "1", "a" > "B", multi-byte > ASCII)
        "e3 0 10 1", "e3 0 9 2", "e3 0 B 1", "e3 0 \u00e91 3", "e3 0 z 1",
        # e4: large grades, more relevant than retrieved
        "e4 0 d1 7", "e4 0 d2 1", "e4 0 d3 4", "e4 0 d4 4", "e4 0 d5 2", "e4 0 d6 0",
        # e5: -0.0 and 0.0 are equal scores; tiny and huge magnitudes
        "e5 0 x 1", "e5 0 y 1", "e5 0 w 2",
        # e6: judged, absent from the run
        "e6 0 a 1",
        # e8: scores equal in single precision tie (trec_eval 9): docid order decides
        "e8 0 q 1", "e8 0 r 2",
    ]
    run = {
        "e1": {"a": 3.0, "b": 2.0, "c": 1.0},
        "e2": {"a": 5.0, "b": 1.0, "c": 1.0, "d": 0.5},
        "e3": {"1": 1.0, "10": 1.0, "9": 1.0, "a": 1.0, "B": 1.0, "\u00e91": 1.0, "z": 0.5},
        "e4": {"d6": 9.0, "d2": 8.0, "x1": 8.0, "d4": 7.0, "x2": 6.0, "d5": 1.0},
        "e5": {"x": -0.0, "y": 0.0, "w": -1e-300, "v": 1e300, "u": -5e-324},
        "e7": {"a": 1.0},
        "e8": {"p": 1.0000000001, "q": 1.0, "r": 0.9999999999},
    }
    qrels = {}
    for line in qrels_lines:
        q, _, d, r = line.split()
        qrels.setdefault(q, {})[d] = int(r)
    lines = []
    for qid in sorted(run):
        for rank, (d, s) in enumerate(run[qid].items(), start=1):
            lines.append(f"{qid} Q0 {d} {rank} {s!r} edge\n")
    return qrels, "\n".join(qrels_lines) + "\n", run, "".join(lines)


def evaluate(qrels, run, level):
    ev = pytrec_eval.RelevanceEvaluator(qrels, PYTREC_MEASURES, relevance_level=level)
    res = ev.evaluate(run)
    cut = {q: dict(trec_eval_order(h)[:10]) for q, h in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=level).evaluate(cut)
    per_query = {}
    for q in sorted(res):
        values = {name: res[q][key] for name, key in MEASURES.items()}
        values["MRR@10"] = rr[q]["recip_rank"]
        per_query[q] = values
    try:
        import ir_measures
        from ir_measures import RR

        # ir_measures computes RR@10 with its MS MARCO provider, which orders tied scores by
        # docid ascending (trec_eval: descending). Give it trec_eval's order as distinct scores.
        measure = RR(rel=level) @ 10
        provider = ir_measures.providers.registry["msmarco"]
        untied = {
            q: {d: float(len(h) - i) for i, (d, _) in enumerate(trec_eval_order(h))}
            for q, h in run.items()
        }
        irm = {m.query_id: m.value for m in provider.iter_calc([measure], qrels, untied)}
        for q, v in per_query.items():
            if abs(irm.get(q, 0.0) - v["MRR@10"]) > 1e-12:
                sys.exit(f"ir_measures RR@10 disagrees on query {q}: {irm.get(q)} vs {v['MRR@10']}")
        print(f"  ir_measures RR(rel={level})@10 agrees on {len(per_query)} queries")
    except ImportError:
        print("  (ir_measures not installed: RR@10 not cross-checked)")
    names = list(MEASURES) + ["MRR@10"]
    n = len(per_query)
    mean = [sum(per_query[q][m] for q in sorted(per_query)) / n for m in names]
    rows = {q: [per_query[q][m] for m in names] for q in sorted(per_query)}
    return {"measures": names, "num_queries": n, "mean": mean, "per_query": rows}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(root, "eval", "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(SEED)

    cran_qrels_path = os.path.join(args.data, "cranfield", "qrels", "test.tsv")
    dl_qrels_path = os.path.join(args.data, "trec-dl-2019-passage", "qrels", "test.tsv")
    cran = read_beir_qrels(cran_qrels_path)
    dl = read_beir_qrels(dl_qrels_path)


    cran_run = make_run(
        rng,
        cran,
        lambda r: str(r.randint(1, 1400)),
        depths=[3, 10, 50, 101, 120, 120, 150, 150, 180, 200, 200, 250, 1050, 1400],
        tie_levels=12,
        offset=3.0,
    )
    dl_run = make_run(
        rng,
        dl,
        lambda r: str(r.randint(0, 8841822)),
        depths=[8, 100, 150, 200, 300, 1100],
        tie_levels=40,
        offset=0.0,
        jitter=1e-9,
    )
    write_gz(os.path.join(args.out, "cranfield.run.trec.gz"), run_lines(rng, cran_run))
    write_gz(os.path.join(args.out, "dl19.run.trec.gz"), run_lines(rng, dl_run))

    edge_qrels, edge_qrels_text, edge_run, edge_run_text = edge_case()
    with open(os.path.join(args.out, "edge.qrels.trec"), "w", encoding="utf-8") as f:
        f.write(edge_qrels_text)
    with open(os.path.join(args.out, "edge.run.trec"), "w", encoding="utf-8") as f:
        f.write(edge_run_text)

    cases = []
    for name, qrels_file, run_file, qrels, run, levels in [
        ("cranfield", "cranfield.qrels.tsv", "cranfield.run.trec.gz", cran, cran_run, [1, 2]),
        ("dl19", "dl19.qrels.tsv", "dl19.run.trec.gz", dl, dl_run, [1, 2]),
        ("edge", "edge.qrels.trec", "edge.run.trec", edge_qrels, edge_run, [1, 2]),
    ]:
        for level in levels:
            print(f"{name}, relevance_level {level}")
            result = evaluate(qrels, run, level)
            cases.append(
                {
                    "name": f"{name}-l{level}",
                    "qrels": qrels_file,
                    "run": run_file,
                    "relevance_level": level,
                    **result,
                }
            )
            means = zip(result["measures"], result["mean"])
            print("  " + " ".join(f"{m}={v:.4f}" for m, v in means))

    fixture = {
        "generator": "scripts/trec_eval_reference.py",
        "seed": SEED,
        "pytrec_eval": metadata.version("pytrec_eval-terrier"),
        "trec_eval": "9.0.8",
        "cases": cases,
    }
    with open(os.path.join(args.out, "trec_eval_reference.json"), "w", encoding="utf-8") as f:
        f.write(compact_json(fixture))


def compact_json(fixture):
    """JSON with one line per query (floats as Python's shortest round-trip repr)."""
    dump = lambda v: json.dumps(v, ensure_ascii=False)
    out = ["{"]
    for key in ("generator", "seed", "pytrec_eval", "trec_eval"):
        out.append(f" {dump(key)}: {dump(fixture[key])},")
    out.append(' "cases": [')
    for i, case in enumerate(fixture["cases"]):
        out.append("  {")
        for key in ("name", "qrels", "run", "relevance_level", "measures", "num_queries", "mean"):
            out.append(f"   {dump(key)}: {dump(case[key])},")
        out.append('   "per_query": {')
        rows = list(case["per_query"].items())
        for j, (q, values) in enumerate(rows):
            out.append(f"    {dump(q)}: {dump(values)}" + ("," if j + 1 < len(rows) else ""))
        out.append("   }")
        out.append("  }" + ("," if i + 1 < len(fixture["cases"]) else ""))
    out.append(" ]")
    out.append("}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
