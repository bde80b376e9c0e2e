//! JSONL sparse vectors: `{"id": <string or int>, "vector": {"term": weight, ...}}` per line.
