#!/usr/bin/env python3
"""Per-query nDCG@10, MRR@10, Recall@100, Recall@1000 and MAP of a TREC run, by pytrec_eval.

The reference the tests compare `bmp-index eval --run RUN --qrels QRELS --per-query` with. Prints
a TSV with the same header and 4-decimal values:

    query  ndcg_cut_10  recip_rank_10  recall_100  recall_1000  map

pytrec_eval has no cut reciprocal rank: MRR@10 is its `recip_rank` on the run cut to each query's
first 10 documents in trec_eval's order (score descending, then document id descending).

Usage: pytrec_eval_run.py --run RUN --qrels QRELS [--relevance-level N]
QRELS is BEIR TSV (with a `query-id corpus-id score` header) or TREC (`qid 0 docid rel`).
"""

import argparse
import sys

import pytrec_eval


def read_qrels(path):
    qrels = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            cols = line.split()
            if not cols:
                continue
            if n == 0 and cols[0] == "query-id":
                continue
            if len(cols) == 3:
                qid, doc, rel = cols
            elif len(cols) == 4:
                qid, _, doc, rel = cols
            else:
                sys.exit(f"{path}:{n + 1}: expected 3 or 4 columns")
            qrels.setdefault(qid, {})[doc] = int(rel)
    return qrels


def read_run(path):
    run = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 6:
                sys.exit(f"{path}:{n + 1}: expected 6 columns")
            qid, _, doc, _, score, _ = cols
            run.setdefault(qid, {})[doc] = float(score)
    return run


def cut(run, k):
    out = {}
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda d: (d[1], d[0]), reverse=True)
        out[qid] = dict(ranked[:k])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--qrels", required=True)
    parser.add_argument("--relevance-level", type=int, default=1)
    args = parser.parse_args()
    qrels = read_qrels(args.qrels)
    run = read_run(args.run)
    level = args.relevance_level
    full = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut_10", "recall_100", "recall_1000", "map"}, relevance_level=level
    ).evaluate(run)
    top10 = pytrec_eval.RelevanceEvaluator(
        qrels, {"recip_rank"}, relevance_level=level
    ).evaluate(cut(run, 10))
    print("query\tndcg_cut_10\trecip_rank_10\trecall_100\trecall_1000\tmap")
    for qid in sorted(full):
        m = full[qid]
        values = [m["ndcg_cut_10"], top10[qid]["recip_rank"], m["recall_100"], m["recall_1000"], m["map"]]
        print(qid + "\t" + "\t".join(f"{v:.4f}" for v in values))


if __name__ == "__main__":
    main()
