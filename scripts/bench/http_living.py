#!/usr/bin/env python3
"""A living collection end to end, over HTTP: stream, search, delete, SIGKILL, restart, verify.

Starts `BIN serve --index DIR --writable` on an empty DIR, streams the first N documents of
DOCS.jsonl into it in batches of BATCH with 8 writer threads while 8 threads search (queries
from QUERIES.jsonl, k = 10), then deletes DELETE of the acknowledged documents (batches of
1,000), kills the server with SIGKILL right after the last acknowledgment (no refresh asked:
the last writes are in the write-ahead log only), restarts it, and checks that every
acknowledged document is there and no deleted one is: each document is searched by one of its
own terms, filtered to its own id (batches of 256 queries). Prints docs/s acknowledged, the
searches' p50 / p99 during the ingest and on the restarted server alone, the restart time, and
what the check found.

usage: http_living.py BIN DIR DOCS.jsonl QUERIES.jsonl N BATCH DELETE
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

bin_path, directory, docs_path, queries_path = sys.argv[1:5]
n, batch, n_delete = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
with open(queries_path) as f:
    queries = [json.loads(line)["vector"] for line in f]


def start():
    """Starts the server; returns (process, address, seconds until it listened)."""
    t = time.time()
    p = subprocess.Popen(
        [bin_path, "serve", "--index", directory, "--writable", "--addr", "127.0.0.1:0",
         "--max-batch", "256", "--max-k", "10"],
        stderr=subprocess.PIPE, text=True,
    )
    for line in p.stderr:
        sys.stdout.write("  server: " + line)
        if "http://" in line:
            addr = line.strip().rsplit("http://", 1)[1]
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, addr, time.time() - t
    raise SystemExit("the server stopped before listening")


def post(addr, path, body):
    request = urllib.request.Request(
        f"http://{addr}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request, timeout=600).read())


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


def searching(addr, while_running):
    stop, latencies = threading.Event(), []

    def search():
        i = random.randrange(len(queries))
        while not stop.is_set():
            t = time.time()
            post(addr, "/v1/search", {"vector": queries[i % len(queries)], "k": 10})
            latencies.append(time.time() - t)
            i += 1

    threads = [threading.Thread(target=search) for _ in range(8)]
    for t in threads:
        t.start()
    while_running()
    stop.set()
    for t in threads:
        t.join()
    return latencies


os.makedirs(directory, exist_ok=False)
server, addr, _ = start()

# Every acknowledged document, with one of its terms (its heaviest) to find it by.
probe = {}
lock = threading.Lock()
source = open(docs_path)
taken = [0]


def next_batch():
    with lock:
        out = []
        while taken[0] < n and len(out) < batch:
            line = source.readline()
            if not line:
                break
            d = json.loads(line)
            out.append({"id": str(d["id"]), "vector": d["vector"]})
            taken[0] += 1
        return out


def writer():
    while True:
        docs = next_batch()
        if not docs:
            return
        post(addr, "/v1/documents", {"documents": docs})
        with lock:
            for d in docs:
                probe[d["id"]] = max(d["vector"].items(), key=lambda kv: kv[1])[0]


def ingest():
    t = time.time()
    writers = [threading.Thread(target=writer) for _ in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    ingest.seconds = time.time() - t


during = searching(addr, ingest)
print(f"ingest: {len(probe)} documents in {ingest.seconds:.1f} s = {len(probe) / ingest.seconds:.0f} docs/s "
      f"acknowledged, batches of {batch}, 8 writers")
print(f"  meanwhile 8 searchers: {len(during)} searches, p50 {pct(during, .5):.1f} ms, p99 {pct(during, .99):.1f} ms")

deleted = random.Random(7).sample(sorted(probe), n_delete)
t = time.time()
for i in range(0, len(deleted), 1000):
    answer = post(addr, "/v1/documents/delete", {"ids": deleted[i : i + 1000]})
    assert answer["missing"] == 0, answer
print(f"deleted {len(deleted)} documents in {time.time() - t:.1f} s")
stats = json.loads(urllib.request.urlopen(f"http://{addr}/v1/stats").read())
print(f"served before the kill: generation {stats['generation']}, {stats['segments']} segments, "
      f"{stats['documents']} documents visible")
server.send_signal(signal.SIGKILL)
server.wait()
pending = os.path.getsize(os.path.join(directory, "WAL"))
print(f"SIGKILL; the write-ahead log holds {pending} bytes")

server, addr, took = start()
print(f"restarted and listening in {took:.1f} s")
stats = json.loads(urllib.request.urlopen(f"http://{addr}/v1/stats").read())
live = len(probe) - len(deleted)
print(f"served after the restart: {stats['segments']} segments, {stats['documents']} documents (expected {live})")
alone = searching(addr, lambda: time.sleep(10))
print(f"read only after the restart: 8 searchers, {len(alone)} searches, p50 {pct(alone, .5):.1f} ms, "
      f"p99 {pct(alone, .99):.1f} ms")

gone = set(deleted)
ids = sorted(probe)
found_live, lost, resurrected = 0, [], []
t = time.time()
for i in range(0, len(ids), 256):
    chunk = ids[i : i + 256]
    answer = post(addr, "/v1/search/batch", {"queries": [
        {"vector": {probe[d]: 1.0}, "k": 1, "filter": [d]} for d in chunk
    ]})
    for d, result in zip(chunk, answer["results"]):
        hit = bool(result["hits"]) and result["hits"][0]["id"] == d
        if d in gone and hit:
            resurrected.append(d)
        elif d not in gone and not hit:
            lost.append(d)
        elif hit:
            found_live += 1
print(f"checked {len(ids)} acknowledged ids in {time.time() - t:.1f} s: {found_live} found, "
      f"{len(lost)} lost, {len(resurrected)} deleted but found")
server.send_signal(signal.SIGTERM)
server.wait()
ok = not lost and not resurrected and stats["documents"] == live
print("OK" if ok else f"FAILED: lost {lost[:5]}, deleted but found {resurrected[:5]}")
sys.exit(0 if ok else 1)
