"""bmp.Collection: logged adds, upserts and deletes, applied by refresh, searched across segments,
against an index built from the same final documents."""

import random

import pytest

import bmp
from test_index import random_documents, random_queries


def test_writes_then_search_equal_an_index_of_the_final_documents(tmp_path):
    docs = dict(random_documents(600, 40, seed=7))
    collection = bmp.Collection.open(tmp_path / "live")
    assert len(collection) == 0
    ids = list(docs)
    assert collection.add([(i, docs[i]) for i in ids[:300]]) == 300
    assert collection.pending == 300
    assert len(collection) == 0, "writes are searched once refreshed"
    summary = collection.refresh()
    assert summary["added"] == 300 and collection.pending == 0
    assert collection.add([(i, docs[i]) for i in ids[300:]]) == 300
    rng = random.Random(3)
    changed = {i: {f"t{rng.randrange(40)}": 2.5} for i in rng.sample(ids, 50)}
    assert collection.upsert(list(changed.items())) == {"added": 50, "replaced": 50}
    docs.update(changed)
    gone = rng.sample(ids, 80)
    assert collection.delete(gone + ["never-added"]) == 80
    for i in gone:
        del docs[i]
    summary = collection.refresh()
    # Deletes of documents still pending never reach a segment; those that did are counted.
    assert 0 < summary["deleted"] <= 80 and len(collection) == len(docs)
    assert summary["segments"] >= 2

    def exact(query, doc):
        return sum(w * docs[doc].get(t, 0.0) for t, w in query.items())

    for query in random_queries(40, 40, seed=11):
        safe = collection.search(query, k=10, algorithm="bmp")
        # Every rank-safe processor gives the same answer across the segments.
        assert collection.search(query, k=10, algorithm="exhaustive") == safe
        # Live documents only, each scored as its final vector (8-bit quantization aside), and
        # none better left out.
        assert all(d in docs for d, _ in safe), query
        for d, score in safe:
            assert score == pytest.approx(exact(query, d), rel=0.02, abs=0.05), (query, d)
        best = sorted((exact(query, d) for d in docs), reverse=True)
        if len(safe) == 10:
            assert min(exact(query, d) for d, _ in safe) >= best[9] * 0.98 - 0.05, query

    whole = bmp.Index.build(tmp_path / "whole.bmp", list(docs.items()))
    compacted = collection.compact()
    assert compacted["dropped"] >= summary["deleted"] and compacted["docs"] == len(docs)
    assert len(collection) == len(whole)
    for query in random_queries(10, 40, seed=5):
        assert set(d for d, _ in collection.search(query, k=len(docs))) == \
            set(d for d, _ in whole.search(query, k=len(docs)))


def test_add_refuses_live_ids_and_writes_survive_a_reopen(tmp_path):
    path = tmp_path / "live"
    collection = bmp.Collection.open(path)
    collection.add([("a", {"x": 1.0}), ("b", {"x": 2.0})])
    with pytest.raises(ValueError, match='"a" exists already'):
        collection.add([("c", {"x": 1.0}), ("a", {"y": 1.0})])
    with pytest.raises(ValueError, match='"d" exists already'):
        collection.add([("d", {"x": 1.0}), ("d", {"y": 1.0})])
    assert collection.pending == 2, "a refused add logs nothing"
    with pytest.raises(ValueError, match="another writer"):
        bmp.Collection.open(path)  # one writer at a time
    with pytest.raises(ValueError, match="documents\\[0\\]"):
        collection.upsert([("e", {"x": "heavy"})])
    del collection  # logged, never refreshed: the next writer applies them
    reopened = bmp.Collection.open(path)
    assert [d for d, _ in reopened.search({"x": 1.0}, k=5)] == ["b", "a"]
    assert reopened.upsert([("a", {"x": 3.0})]) == {"added": 1, "replaced": 1}
    reopened.refresh()
    assert [d for d, _ in reopened.search({"x": 1.0}, k=5)] == ["a", "b"]
    with pytest.raises(ValueError, match="k must be at least 1"):
        reopened.search({"x": 1.0}, k=0)
