#!/usr/bin/env python3
"""Independent reference for the Rust SPLADE encoder (bmp-encoder).

A plain numpy implementation of the BERT masked-LM forward pass (embeddings + LayerNorm,
multi-head self-attention, GELU feed-forward, MLM head transform + tied decoder) and SPLADE
pooling (w_j = max over tokens of log(1 + relu(logit_j))). It reads model.safetensors itself
(8-byte little-endian header length, JSON header, raw little-endian data) and tokenizes with the
PyPI `tokenizers` package. No torch, no transformers.

Every sentence is run alone (no padding), in float64, so the output does not depend on batching.

Writes encoder/tests/fixtures/splade_reference.json:
  {"model_dir", "max_length", "config", "sentences": [{"text", "token_ids", "truncated",
   "vector": [[token_id, weight], ...] (all nonzero terms, sorted by id)}]}

Usage: scripts/splade_reference.py [--model models/splade-tiny] [--max-length 40] [--out PATH]
Needs: pip install numpy tokenizers
"""

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parent.parent

# Different lengths so that a batch needs padding; the last one is long enough to be truncated at
# the default --max-length 40.
SENTENCES = [
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "BM25",
    "Sparse retrieval models such as SPLADE expand documents with related vocabulary terms, "
    "which helps lexical matching.",
    "Mitochondria are the powerhouse of the cell; they produce ATP through oxidative "
    "phosphorylation.",
    "The quick brown fox jumps over the lazy dog. " * 6
    + "Block-max pruning visits the most promising blocks of documents first and stops early "
    "when no remaining block can improve the top-k results.",
]


def read_safetensors(path):
    """Returns {name: np.ndarray (float64)} from a .safetensors file."""
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start : base + end]
        dtype = info["dtype"]
        shape = info["shape"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F64":
            arr = np.frombuffer(raw, dtype="<f8")
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2")
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in ("I64", "I32"):
            continue  # index buffers (position_ids), not weights
        else:
            raise SystemExit(f"{path}: tensor {name} has unsupported dtype {dtype}")
        tensors[name] = arr.reshape(shape).astype(np.float64)
    return tensors


def get(t, *names):
    """The first of `names` present in t (old checkpoints use LayerNorm.gamma/beta)."""
    for n in names:
        if n in t:
            return t[n]
    raise SystemExit(f"missing tensor: one of {names}")


def layer_norm(x, prefix, t, eps):
    w = get(t, prefix + ".weight", prefix + ".gamma")
    b = get(t, prefix + ".bias", prefix + ".beta")
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(x, prefix, t):
    return x @ t[prefix + ".weight"].T + t[prefix + ".bias"]


_erf = np.vectorize(math.erf)


def activation(x, name):
    if name == "gelu":  # exact GELU, as transformers' "gelu" (erf based)
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):  # tanh approximation
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    raise SystemExit(f"unsupported hidden_act {name}")


def encoder_states(ids, t, cfg, prefix="bert."):
    """Last hidden states [len, hidden] of one unpadded sequence; `prefix` is the weights' name
    prefix ("bert." in a masked-LM checkpoint, "" in a bare BertModel)."""
    eps = cfg.get("layer_norm_eps", 1e-12)
    act = cfg.get("hidden_act", "gelu")
    n = len(ids)
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    dh = h // heads

    x = (
        t[prefix + "embeddings.word_embeddings.weight"][ids]
        + t[prefix + "embeddings.position_embeddings.weight"][:n]
        + t[prefix + "embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, prefix + "embeddings.LayerNorm", t, eps)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"{prefix}encoder.layer.{layer}"
        q = linear(x, p + ".attention.self.query", t).reshape(n, heads, dh).transpose(1, 0, 2)
        k = linear(x, p + ".attention.self.key", t).reshape(n, heads, dh).transpose(1, 0, 2)
        v = linear(x, p + ".attention.self.value", t).reshape(n, heads, dh).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        scores -= scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(linear(ctx, p + ".attention.output.dense", t) + x,
                       p + ".attention.output.LayerNorm", t, eps)
        inter = activation(linear(x, p + ".intermediate.dense", t), act)
        x = layer_norm(linear(inter, p + ".output.dense", t) + x, p + ".output.LayerNorm", t, eps)
    return x


def mlm_logits(ids, t, cfg):
    """Logits [len, vocab] of one unpadded sequence."""
    eps = cfg.get("layer_norm_eps", 1e-12)
    act = cfg.get("hidden_act", "gelu")
    x = encoder_states(ids, t, cfg)

    y = activation(linear(x, "cls.predictions.transform.dense", t), act)
    y = layer_norm(y, "cls.predictions.transform.LayerNorm", t, eps)
    decoder = t.get("cls.predictions.decoder.weight", t["bert.embeddings.word_embeddings.weight"])
    bias = t.get("cls.predictions.decoder.bias", t.get("cls.predictions.bias"))
    return y @ decoder.T + bias


def splade(ids, t, cfg):
    logits = mlm_logits(ids, t, cfg)
    w = np.log1p(np.maximum(logits, 0.0)).max(axis=0)
    nz = np.nonzero(w > 0)[0]
    return [[int(j), float(w[j])] for j in nz]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "splade-tiny"))
    ap.add_argument("--max-length", type=int, default=40)
    ap.add_argument("--out", default=str(REPO / "encoder" / "tests" / "fixtures" / "splade_reference.json"))
    args = ap.parse_args()

    model = Path(args.model)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (model / f).is_file():
            sys.exit(f"{model / f} is missing; run scripts/setup-models.sh")
    cfg = json.loads((model / "config.json").read_text())
    tensors = read_safetensors(model / "model.safetensors")
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    full = [e.ids for e in tok.encode_batch(SENTENCES)]
    tok.enable_truncation(max_length=args.max_length)

    out = []
    for text, untruncated in zip(SENTENCES, full):
        ids = tok.encode(text).ids
        vec = splade(ids, tensors, cfg)
        out.append({
            "text": text,
            "token_ids": ids,
            "truncated": len(untruncated) > len(ids),
            "vector": vec,
        })
        print(f"{len(ids):3d} tokens{' (truncated)' if out[-1]['truncated'] else ''}, "
              f"{len(vec)} terms: {text[:50]!r}", file=sys.stderr)
    if not any(s["truncated"] for s in out):
        sys.exit(f"no sentence is truncated at --max-length {args.max_length}; lower it")

    doc = {
        "generated_by": "scripts/splade_reference.py (numpy float64, one sentence at a time)",
        "model_dir": "models/splade-tiny",
        "max_length": args.max_length,
        "hidden_act": cfg.get("hidden_act", "gelu"),
        "sentences": out,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # One line per list keeps the fixture readable and diffable.
    text = json.dumps(doc, indent=1)
    for s in out:
        for key in ("token_ids", "vector"):
            text = text.replace(json.dumps(s[key], indent=1).replace("\n", "\n   "),
                                json.dumps(s[key]), 1)
    assert json.loads(text) == doc
    Path(args.out).write_text(text + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
