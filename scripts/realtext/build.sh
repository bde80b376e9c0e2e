#!/usr/bin/env bash
# Build a REAL-TEXT benchmark collection for bmp-index from English text that Debian ships.
#
#   scripts/realtext/build.sh [OUT_DIR]          (default OUT_DIR: bench-data/realtext)
#
# Steps (each is skipped when its output already exists, so a rerun resumes):
#   1. `apt-get download` 12 packages into OUT_DIR/cache/debs (no root install; runs
#      `apt-get update` once if a download fails) and unpack each with `dpkg-deb -x` into
#      OUT_DIR/cache/extract/<package>: dictionaries (dict-gcide, wordnet-base, dict-foldoc,
#      dict-jargon, dict-devil) and documentation (python3.11-doc, debian-reference-en, perl-doc,
#      manpages, manpages-dev, postgresql-doc-15). About 70 MB, under a minute.
#   2. scripts/realtext/passages.py (Python 3, standard library) cuts them into passages of
#      about 30-120 words (mean ~56), drops near-empty ones and duplicates, and writes
#      OUT_DIR/corpus.jsonl (BEIR: {"_id","title","text"}; ~204,600 passages, ids
#      "<source>-<n>", sorted by sha1(id) so any prefix is a uniform mix of the sources; the
#      same bytes every run for the same package versions) and OUT_DIR/SOURCES.txt
#      (package, version, passages). About 40 s.
#   3. Encodes the first 2,000 passages with the SPLADE model to time it (docs/s; ~1 min).
#   4. Encodes the MS MARCO dev queries (6,980) -> OUT_DIR/queries.jsonl (~25 s).
#   5. Encodes the corpus -> OUT_DIR/docs.jsonl ({"id","vector"}), or only its first LIMIT
#      passages. This is the long step: splade-tiny on one CPU thread does ~45 docs/s, i.e.
#      ~76 min for all 204,596 passages; bound it with LIMIT, or use a GPU:
#      ENCODE_ARGS="--device cuda" (needs a binary built with --features cuda).
#
# Environment:
#   LIMIT=N               encode only the first N passages of corpus.jsonl (default: all;
#                         0: stop after the timing and the queries)
#   ENCODE_ARGS="..."     extra arguments for `bmp-index encode` (e.g. "--device cuda")
#   RAYON_NUM_THREADS=1   encoder threads (default 1: leaves the other cores alone)
#   BMP_INDEX=PATH        the binary (default target/release/bmp-index; not built here)
#   MODEL=DIR             the model (default models/splade-tiny)
#   QUERIES=FILE          BEIR queries (default ../shared/data/msmarco-passage-dev-small/queries.jsonl)
#
# Long runs: LIMIT=N nohup scripts/realtext/build.sh >bench-data/realtext/encode.log 2>&1 &
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_DIR=${1:-bench-data/realtext}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$ROOT"

BIN=${BMP_INDEX:-target/release/bmp-index}
MODEL=${MODEL:-models/splade-tiny}
QUERIES=${QUERIES:-../shared/data/msmarco-passage-dev-small/queries.jsonl}
ENCODE_ARGS=${ENCODE_ARGS:-}
LIMIT=${LIMIT:-}
SAMPLE=2000
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$RAYON_NUM_THREADS}
export TOKENIZERS_PARALLELISM=false

PACKAGES="dict-gcide wordnet-base dict-foldoc dict-jargon dict-devil python3.11-doc
debian-reference-en perl-doc manpages manpages-dev postgresql-doc-15"

CACHE=$OUT_DIR/cache
DEBS=$CACHE/debs
EXTRACT=$CACHE/extract
mkdir -p "$DEBS" "$EXTRACT"

log() { echo "[realtext $(date +%H:%M:%S)] $*"; }
now() { date +%s.%N; }
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# Mean number of terms per vector line of an encode output file.
mean_terms() {
  python3 -c '
import json, sys
n = t = 0
for line in open(sys.argv[1], encoding="utf-8"):
    t += len(json.loads(line)["vector"]); n += 1
print("%d vectors, %.1f terms each" % (n, t / max(n, 1)))' "$1"
}

# encode INPUT OUTPUT LOGFILE: run bmp-index encode (it writes OUTPUT atomically, through a
# temporary .OUTPUT.tmp-PID next to it) and log every PROGRESS_EVERY seconds how many lines that
# temporary file has.
PROGRESS_EVERY=${PROGRESS_EVERY:-300}
encode() {
  local in=$1 out=$2 elog=$3 total mon rc=0
  total=$(lines "$in")
  (
    start=$(date +%s)
    while sleep "$PROGRESS_EVERY"; do
      done_n=$(cat "$(dirname "$out")/.$(basename "$out").tmp-"* 2>/dev/null | wc -l | tr -d ' ')
      el=$(($(date +%s) - start))
      awk -v d="$done_n" -v t="$total" -v e="$el" -v now="$(date +%H:%M:%S)" 'BEGIN {
        r = d / (e > 0 ? e : 1); rest = (r > 0) ? (t - d) / r : 0
        printf "[realtext %s] progress: %d / %d (%.1f docs/s, about %.0f min left)\n",
               now, d, t, r, rest / 60 }'
    done
  ) &
  mon=$!
  # shellcheck disable=SC2086  # ENCODE_ARGS is a list of words on purpose
  "$BIN" encode --model "$MODEL" --input "$in" --output "$out" $ENCODE_ARGS >"$elog" 2>&1 || rc=$?
  kill "$mon" 2>/dev/null || true
  wait "$mon" 2>/dev/null || true
  tr '\r' '\n' <"$elog" | grep -v -E '^[[:space:]]*$' | tail -n 3 | sed 's/^/    encode: /'
  if [ "$rc" -ne 0 ]; then
    log "encode failed (exit $rc) on $in; see $elog"
    exit 1
  fi
}

# ------------------------------------------------------------------ 1. packages
missing=""
for p in $PACKAGES; do
  ls "$DEBS/${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "downloading:$missing"
  # shellcheck disable=SC2086
  if ! (cd "$DEBS" && apt-get download $missing); then
    log "apt-get download failed; running apt-get update and retrying"
    apt-get update
    # shellcheck disable=SC2086
    (cd "$DEBS" && apt-get download $missing)
  fi
fi
for p in $PACKAGES; do
  deb=$(ls "$DEBS/${p}"_*.deb | sort | tail -n 1)
  if [ ! -d "$EXTRACT/$p" ]; then
    log "unpacking $(basename "$deb")"
    rm -rf "$EXTRACT/$p.tmp"
    dpkg-deb -x "$deb" "$EXTRACT/$p.tmp"
    mv "$EXTRACT/$p.tmp" "$EXTRACT/$p"
  fi
done

# ------------------------------------------------------------------ 2. passages
if [ ! -f "$OUT_DIR/corpus.jsonl" ]; then
  log "building passages"
  python3 scripts/realtext/passages.py "$EXTRACT" "$OUT_DIR/corpus.jsonl" "$CACHE/counts.tsv"
  {
    echo "# Real-text corpus built by scripts/realtext/build.sh on $(date -u +%Y-%m-%d) from Debian packages"
    echo "# (apt sources: $(apt-get indextargets --format '$(SITE) $(RELEASE)' 'Created-By: Packages' 2>/dev/null | sort -u | head -n 1))"
    echo "# package	version	source	passages	duplicates_dropped	mean_words"
    while IFS=$'\t' read -r pkg src n dups words; do
      deb=$(ls "$DEBS/${pkg}"_*.deb | sort | tail -n 1)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" "$src" "$n" "$dups" "$words"
    done <"$CACHE/counts.tsv"
    echo "# total passages: $(lines "$OUT_DIR/corpus.jsonl")"
    echo "# corpus.jsonl sha256: $(sha256sum "$OUT_DIR/corpus.jsonl" | cut -d' ' -f1)"
  } >"$OUT_DIR/SOURCES.txt"
fi
TOTAL=$(lines "$OUT_DIR/corpus.jsonl")
log "corpus: $TOTAL passages in $OUT_DIR/corpus.jsonl"
grep -v '^# corpus' "$OUT_DIR/SOURCES.txt" | sed 's/^/    /'

if [ ! -x "$BIN" ]; then
  log "no $BIN: build it (cargo build --release --bin bmp-index) and rerun to encode"
  exit 1
fi
log "encoder: $BIN encode --model $MODEL $ENCODE_ARGS (RAYON_NUM_THREADS=$RAYON_NUM_THREADS)"

# ------------------------------------------------------------------ 3. throughput sample
if [ ! -f "$CACHE/sample$SAMPLE.rate" ]; then
  head -n "$SAMPLE" "$OUT_DIR/corpus.jsonl" >"$CACHE/sample$SAMPLE.jsonl"
  log "timing the encoder on the first $SAMPLE passages"
  t0=$(now)
  encode "$CACHE/sample$SAMPLE.jsonl" "$CACHE/sample$SAMPLE.docs.jsonl" "$CACHE/sample$SAMPLE.encode.log"
  t1=$(now)
  awk -v n="$SAMPLE" -v a="$t0" -v b="$t1" -v args="$ENCODE_ARGS" -v th="$RAYON_NUM_THREADS" \
    'BEGIN { printf "%.1f docs/s (%d docs in %.1f s, threads %s, args \"%s\")\n", n / (b - a), n, b - a, th, args }' \
    >"$CACHE/sample$SAMPLE.rate"
fi
RATE=$(cut -d' ' -f1 "$CACHE/sample$SAMPLE.rate")
log "throughput: $(cat "$CACHE/sample$SAMPLE.rate")"
N=${LIMIT:-$TOTAL}
[ "$N" -gt "$TOTAL" ] && N=$TOTAL
awk -v n="$N" -v r="$RATE" -v t="$TOTAL" \
  'BEGIN { printf "[realtext] estimate: %d passages in %.0f min (all %d: %.0f min)\n", n, n / r / 60, t, t / r / 60 }'

# ------------------------------------------------------------------ 4. queries
if [ ! -f "$OUT_DIR/queries.jsonl" ]; then
  log "encoding queries $QUERIES"
  encode "$QUERIES" "$OUT_DIR/queries.jsonl" "$CACHE/queries.encode.log"
fi
log "queries: $(mean_terms "$OUT_DIR/queries.jsonl")"

# ------------------------------------------------------------------ 5. documents
if [ "$N" -eq 0 ]; then
  log "LIMIT=0: documents not encoded"
  exit 0
fi
if [ ! -f "$OUT_DIR/docs.jsonl" ]; then
  input=$OUT_DIR/corpus.jsonl
  if [ "$N" -lt "$TOTAL" ]; then
    input=$CACHE/corpus.first$N.jsonl
    head -n "$N" "$OUT_DIR/corpus.jsonl" >"$input"
  fi
  log "encoding $N passages -> $OUT_DIR/docs.jsonl (expected finish $(date -d "@$(awk -v n="$N" -v r="$RATE" -v t="$(date +%s)" 'BEGIN { printf "%d", t + n / r }')" +%H:%M))"
  t0=$(now)
  encode "$input" "$OUT_DIR/docs.jsonl" "$CACHE/docs.encode.log"
  t1=$(now)
  awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "[realtext] encoded %d passages in %.0f s: %.1f docs/s\n", n, b - a, n / (b - a) }'
fi
log "docs: $(mean_terms "$OUT_DIR/docs.jsonl")"
log "done: corpus $TOTAL passages, docs.jsonl $(lines "$OUT_DIR/docs.jsonl") vectors, queries.jsonl $(lines "$OUT_DIR/queries.jsonl") vectors in $OUT_DIR"
