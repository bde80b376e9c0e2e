#!/usr/bin/env python3
"""Per-query latency of `bmp.Index.search_batch` (one thread) against `bmp-index bench` on the
same index and queries, alternating, a few rounds.

usage: python_vs_cli.py BMP_INDEX_BIN INDEX QUERIES [K ...]

Seven alternating rounds (BMP_ROUNDS sets another odd number); the medians are compared.

QUERIES is what `bmp-index bench` reads (JSONL vectors or Anserini TSV); the Python side parses
the same file into dicts. Prints mean microseconds per query for both, and their ratio. The
Python figure includes what `bench` leaves out of its timing: reading the dicts, looking their
terms up, and making the arrays of ids and scores.
"""

import collections
import json
import os
import subprocess
import sys
import time

# NumPy's OpenBLAS threads spin on the cores the search runs on unless told not to start.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bmp  # noqa: E402


def read_queries(path):
    queries = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                queries.append({t: float(w) for t, w in json.loads(line)["vector"].items()})
            else:
                _, text = line.split("\t", 1)
                queries.append({t: float(n) for t, n in collections.Counter(text.split()).items()})
    return queries


def cli_mean(binary, index, queries, k):
    out = subprocess.run(
        [binary, "bench", "--index", index, "--queries", queries, "--k", str(k),
         "--algorithms", "bmp", "--warmup", "1", "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])["mean_us"]


def python_mean(index, queries, k):
    index.search_batch(queries, k=k, threads=1)  # warm-up, as bench's --warmup 1
    start = time.perf_counter()
    index.search_batch(queries, k=k, threads=1)
    return (time.perf_counter() - start) * 1e6 / len(queries)


def main():
    binary, path, query_file = sys.argv[1:4]
    ks = [int(k) for k in sys.argv[4:]] or [10, 1000]
    index = bmp.Index.open(path)
    queries = read_queries(query_file)
    rounds = int(os.environ.get("BMP_ROUNDS", "7"))
    for k in ks:
        cli, py = [], []
        for _ in range(rounds):
            cli.append(cli_mean(binary, path, query_file, k))
            py.append(python_mean(index, queries, k))
        c, p = sorted(cli)[rounds // 2], sorted(py)[rounds // 2]
        print(f"k={k}: bmp-index bench {c:.1f} us/query, Python search_batch {p:.1f} us/query, "
              f"ratio {p / c:.3f} (medians of {rounds} alternating rounds; rounds: "
              f"cli {[round(x, 1) for x in cli]}, python {[round(x, 1) for x in py]})")


if __name__ == "__main__":
    main()
