#!/usr/bin/env python3
"""Independent reference for the Rust token-embedding encoder (bmp_encoder::TokenEncoder).

Runs the numpy BERT of splade_reference.py (float64, one sentence at a time, no padding) on a
bare BertModel checkpoint (all-MiniLM-L6-v2 by default), drops the special tokens, applies a
`linear.weight` projection when the checkpoint has one, and L2-normalises each token vector.

Writes encoder/tests/fixtures/token_reference.json:
  {"max_length", "dims_kept", "sentences": [{"text", "token_ids",
   "vectors": [{"head": first dims_kept components, "sum": sum of all components}, ...]}]}
The head and the sum of every vector keep the fixture small while still covering every
component.

Usage: scripts/token_reference.py [--model models/minilm-l6] [--max-length 24] [--out PATH]
Needs: pip install numpy tokenizers
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from splade_reference import encoder_states, read_safetensors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DIMS_KEPT = 12
SENTENCES = [
    "What is the capital of France?",
    "Late interaction scores every query token against every document token.",
    "The quick brown fox jumps over the lazy dog. " * 4,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "minilm-l6"))
    ap.add_argument("--max-length", type=int, default=24)
    ap.add_argument("--out", default=str(REPO / "encoder" / "tests" / "fixtures" / "token_reference.json"))
    args = ap.parse_args()
    model = Path(args.model)
    cfg = json.loads((model / "config.json").read_text())
    t = read_safetensors(model / "model.safetensors")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in t else ""
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=args.max_length)
    out = []
    for text in SENTENCES:
        enc = tok.encode(text)
        x = encoder_states(enc.ids, t, cfg, prefix)
        if "linear.weight" in t:
            x = x @ t["linear.weight"].T
        keep = [i for i, s in enumerate(enc.special_tokens_mask) if s == 0]
        vectors = []
        for i in keep:
            v = x[i] / np.linalg.norm(x[i])
            vectors.append({"head": [round(float(a), 7) for a in v[:DIMS_KEPT]],
                            "sum": round(float(v.sum()), 7)})
        out.append({"text": text, "token_ids": enc.ids, "vectors": vectors})
        print(f"{len(enc.ids):3d} tokens, {len(vectors)} kept: {text[:50]!r}", file=sys.stderr)
    doc = {
        "generated_by": "scripts/token_reference.py (numpy float64, one sentence at a time)",
        "model_dir": "models/minilm-l6",
        "max_length": args.max_length,
        "dims_kept": DIMS_KEPT,
        "sentences": out,
    }
    Path(args.out).write_text(json.dumps(doc) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
