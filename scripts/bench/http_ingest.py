#!/usr/bin/env python3
"""Writes while searching, over HTTP: against `bmp-index serve --index DIR --writable`.

Loads the first quarter of N documents (batches of 1,000), measures 8 searching threads alone
for 5 s, then ingests the rest in batches of BATCH with 8 writer threads while 8 threads
search, then asks for a refresh (`POST /v1/refresh`) so that every write is visible. Prints
docs/s acknowledged (durable) and the searches' p50 / p99, read-only and during the ingest.

usage: http_ingest.py DOCS.jsonl QUERIES.jsonl ADDR N BATCH
"""
import json
import sys
import threading
import time
import urllib.request

docs_path, queries_path, addr, n, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
docs = []
with open(docs_path) as f:
    for i, line in enumerate(f):
        if i >= n:
            break
        d = json.loads(line)
        docs.append({"id": str(d["id"]), "vector": d["vector"]})
with open(queries_path) as f:
    queries = [json.loads(line)["vector"] for line in f]


def post(path, body):
    request = urllib.request.Request(
        f"http://{addr}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request).read())


def search(latencies, stop):
    i = 0
    while not stop.is_set():
        t = time.time()
        post("/v1/search", {"vector": queries[i % len(queries)], "k": 10})
        latencies.append(time.time() - t)
        i += 1


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


def searching(while_running):
    stop, latencies = threading.Event(), []
    threads = [threading.Thread(target=search, args=(latencies, stop)) for _ in range(8)]
    for t in threads:
        t.start()
    while_running()
    stop.set()
    for t in threads:
        t.join()
    return latencies


first = n // 4
for i in range(0, first, 1000):
    post("/v1/documents", {"documents": docs[i : min(i + 1000, first)]})
alone = searching(lambda: time.sleep(5))
print(f"read only: {len(alone)} searches, p50 {pct(alone, .5):.1f} ms, p99 {pct(alone, .99):.1f} ms")

rest = docs[first:]
chunks = [rest[i : i + batch] for i in range(0, len(rest), batch)]
lock, next_chunk = threading.Lock(), [0]


def writer():
    while True:
        with lock:
            if next_chunk[0] >= len(chunks):
                return
            chunk = chunks[next_chunk[0]]
            next_chunk[0] += 1
        post("/v1/documents", {"documents": chunk})


def ingest():
    start = time.time()
    writers = [threading.Thread(target=writer) for _ in range(8)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    ingest.seconds = time.time() - start


during = searching(ingest)
start = time.time()
post("/v1/refresh", {})
visible = time.time() - start
stats = json.loads(urllib.request.urlopen(f"http://{addr}/v1/stats").read())
print(
    f"8 writers: {len(rest)} docs in {ingest.seconds:.1f} s = {len(rest) / ingest.seconds:.0f} docs/s, "
    f"batches of {batch}; generation {stats['generation']}, {stats['segments']} segments, {stats['documents']} docs"
)
print(f"the last refresh took {visible * 1000:.0f} ms")
print(f"meanwhile 8 searchers: {len(during)} searches, p50 {pct(during, .5):.1f} ms, p99 {pct(during, .99):.1f} ms")
