#!/usr/bin/env bash
# The benchmark suite: several collections, every block size, every processor, side by side.
#
#   scripts/bench/suite.sh [OUT_DIR]            (default OUT_DIR: bench-data/suite)
#
# Collections (each cached in OUT_DIR; a step whose output exists is skipped):
#   planted    DOCS synthetic SPLADE-shaped documents (`bmp-index synth`) over BERT's WordPiece
#              vocabulary, with the first QUERIES real SPLADE++ MS MARCO dev queries as queries,
#              also planted as topics (the collection holds documents about each query);
#   unplanted  the same generator, the same queries, NOT planted (`--no-plant`): documents are
#              drawn independently of the queries, which share only the vocabulary;
#   diverse    unplanted with 100,000 topics instead of 1,000 (little locality for reordering);
#   realtext   real English passages encoded with the SPLADE model, queried with the MS MARCO
#              dev query texts encoded by the same model (scripts/realtext/build.sh; used when
#              its docs.jsonl exists, REALTEXT=DIR to point elsewhere).
# Each collection is built once with BP reordering at block size 32, exported to CIFF, and rebuilt
# from that CIFF in the same document order at every block size of BLOCK_SIZES, so that block
# sizes are compared on identical document orders.
#
# Then, REPEAT times, interleaved (the machine is shared: compare ratios within a round), it runs
#   bmp-index bench --index I --queries Q --k 10,1000 --algorithms ALGORITHMS --profile
# on every collection and block size, writing OUT_DIR/results/<collection>-b<size>.r<round>.txt.
#
# Environment: DOCS (1000000), QUERIES (1000), BLOCK_SIZES ("8 16 32 64"), REPEAT (2),
# ALGORITHMS ("exhaustive,maxscore,bmw,bmp,sp,bmp:alpha=0.9"), COLLECTIONS ("planted unplanted
# diverse realtext"), BMP_INDEX (target/release/bmp-index), VOCAB (a vocab.txt; default: taken
# from models/splade-tiny/tokenizer.json).
# Time at 1M documents: about 2 min to generate and 2.5 min to build each collection at block
# size 32, 1 to 2 min per other block size, a few minutes per bench round.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_DIR=${1:-bench-data/suite}
mkdir -p "$OUT_DIR/results"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$ROOT"

BIN=${BMP_INDEX:-target/release/bmp-index}
DOCS=${DOCS:-1000000}
QUERIES=${QUERIES:-1000}
BLOCK_SIZES=${BLOCK_SIZES:-8 16 32 64}
REPEAT=${REPEAT:-2}
ALGORITHMS=${ALGORITHMS:-exhaustive,maxscore,bmw,bmp,sp,bmp:alpha=0.9}
COLLECTIONS=${COLLECTIONS:-planted unplanted diverse realtext}
REALTEXT=${REALTEXT:-bench-data/realtext}
SOURCE_QUERIES=../shared/data/splade-encoded-queries/topics.msmarco-passage.dev-subset.splade-pp-ed.tsv.gz

log() { echo "[suite $(date +%H:%M:%S)] $*"; }

if [ ! -x "$BIN" ]; then
  echo "no $BIN: cargo build --release --bin bmp-index" >&2
  exit 1
fi

VOCAB=${VOCAB:-$OUT_DIR/vocab.txt}
if [ ! -f "$VOCAB" ]; then
  python3 -c '
import json, sys
vocab = json.load(open(sys.argv[1], encoding="utf-8"))["model"]["vocab"]
sys.stdout.write("".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda e: e[1])))' \
    models/splade-tiny/tokenizer.json >"$VOCAB"
fi
if [ ! -f "$OUT_DIR/queries.tsv" ]; then
  zcat "$SOURCE_QUERIES" | head -n "$QUERIES" >"$OUT_DIR/queries.tsv"
fi

# collection NAME: prints "DOCS_FILE QUERIES_FILE" after making the documents if needed.
collection() {
  local name=$1 synth_args=()
  case $name in
    planted) synth_args=(--seed 7) ;;
    unplanted) synth_args=(--seed 7 --no-plant) ;;
    diverse) synth_args=(--seed 11 --topics 100000 --no-plant) ;;
    realtext)
      if [ -f "$REALTEXT/queries.jsonl" ] && [ ! -f "$OUT_DIR/realtext.queries.jsonl" ]; then
        head -n "$QUERIES" "$REALTEXT/queries.jsonl" >"$OUT_DIR/realtext.queries.jsonl"
      fi
      echo "$REALTEXT/docs.jsonl $OUT_DIR/realtext.queries.jsonl"
      return
      ;;
    *)
      echo "unknown collection $name" >&2
      exit 2
      ;;
  esac
  local docs=$OUT_DIR/$name.jsonl
  if [ ! -f "$docs" ]; then
    log "generating $name ($DOCS documents)" >&2
    "$BIN" synth --docs "$DOCS" "${synth_args[@]}" --vocab-file "$VOCAB" \
      --query-source "$OUT_DIR/queries.tsv" --output-docs "$docs" \
      --output-queries "$OUT_DIR/$name.queries.jsonl" >&2
  fi
  echo "$docs $OUT_DIR/queries.tsv"
}

declare -A QUERY_FILE
for c in $COLLECTIONS; do
  read -r docs queries < <(collection "$c")
  if [ ! -f "$docs" ]; then
    log "skipping $c: no $docs"
    continue
  fi
  QUERY_FILE[$c]=$queries
  base=$OUT_DIR/$c-b32.bmp
  if [ ! -f "$base" ]; then
    log "building $base (BP reordering)"
    "$BIN" build --input "$docs" --output "$base" --reorder bp --block-size 32 2>&1 | tail -n 1
  fi
  for b in $BLOCK_SIZES; do
    idx=$OUT_DIR/$c-b$b.bmp
    if [ ! -f "$idx" ]; then
      [ -f "$OUT_DIR/$c.ciff" ] || "$BIN" export-ciff --index "$base" --output "$OUT_DIR/$c.ciff"
      log "building $idx (the same document order)"
      "$BIN" build --input "$OUT_DIR/$c.ciff" --output "$idx" --reorder none --block-size "$b" 2>&1 | tail -n 1
    fi
  done
done

for r in $(seq 1 "$REPEAT"); do
  for c in "${!QUERY_FILE[@]}"; do
    for b in $BLOCK_SIZES; do
      out=$OUT_DIR/results/$c-b$b.r$r.txt
      log "round $r: $c, block size $b"
      "$BIN" bench --index "$OUT_DIR/$c-b$b.bmp" --queries "${QUERY_FILE[$c]}" --k 10,1000 \
        --algorithms "$ALGORITHMS" --profile >"$out"
      grep -E '^(bmp|sp|exhaustive)' "$out" | head -n 12 | sed 's/^/    /'
    done
  done
done
log "results in $OUT_DIR/results"
