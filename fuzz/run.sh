#!/usr/bin/env bash
# Seeds the fuzz corpora (from ../shared/data and generated files) and runs every target.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# FUZZ_RUNS=N also stops a target after N executions, whichever comes first.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Crashes land in
# fuzz/artifacts/<target>/; each becomes a regression test in the crate it concerns.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jsonl ciff queries_tsv index_open http_body auth_header)
data=../../shared/data
bin=../target/release/bmp-index
seed() { mkdir -p "corpus/$1"; }

seed jsonl
seed ciff
seed queries_tsv
seed index_open
seed http_body
seed auth_header
if [ -x "$bin" ]; then
  tmp=$(mktemp -d)
  "$bin" synth --docs 300 --queries 20 --seed 9 --output-docs "$tmp/d.jsonl" --output-queries "$tmp/q.jsonl" 2>/dev/null
  head -c 20000 "$tmp/d.jsonl" > corpus/jsonl/synth
  head -c 4000 "$tmp/q.jsonl" > corpus/jsonl/queries
  "$bin" build --input "$tmp/d.jsonl" --output corpus/index_open/synth.bmp --block-size 8 --superblock-size 2 2>/dev/null
  "$bin" synth --docs 12 --queries 1 --seed 3 --output-docs "$tmp/d12.jsonl" --output-queries "$tmp/q1.jsonl" 2>/dev/null
  "$bin" build --input "$tmp/d12.jsonl" --output "$tmp/d12.bmp" --block-size 8 2>/dev/null
  "$bin" export-ciff --index "$tmp/d12.bmp" --output corpus/ciff/synth12.ciff 2>/dev/null
  printf '{"id":"a","vector":{"x":1.5,"y":2}}\n{"id":"b","vector":{"y":0.5}}\n' > "$tmp/s.jsonl"
  "$bin" build --input "$tmp/s.jsonl" --output corpus/index_open/small.bmp --block-size 8 2>/dev/null
  "$bin" export-ciff --index corpus/index_open/small.bmp --output corpus/ciff/small.ciff 2>/dev/null
  rm -rf "$tmp"
fi
for f in "$data"/ciff-toy/*.ciff.gz; do [ -f "$f" ] && zcat "$f" > "corpus/ciff/$(basename "$f" .gz)"; done
for f in "$data"/splade-encoded-queries/*.tsv*; do
  [ -f "$f" ] || continue
  # The first 20 kB of each (zcat stops early on a closed pipe: not an error here).
  (zcat -f "$f" 2>/dev/null || true) | head -c 20000 > "corpus/queries_tsv/$(basename "$f" .gz)"
done
printf '{"vector": {"x": 1.0, "y": 0.5}, "k": 10}' > corpus/http_body/search
printf '{"queries": [{"id": 1, "vector": {"x": 1}}, {"vector": {"y": 2}, "k": 3, "algorithm": "bmp", "alpha": 0.9}]}' > corpus/http_body/batch
printf '{"vector": {"a": 1}, "algorithm": "sp", "mu": 0.5, "eta": 1, "filter": ["d1"]}' > corpus/http_body/sp
printf '{"index": "x.bmp"}' > corpus/http_body/reload
printf 'Bearer read-key-0123456789' > corpus/auth_header/read
printf 'bearer  admin-key-0123456789 ' > corpus/auth_header/admin
printf 'Basic d3JpdGUta2V5' > corpus/auth_header/basic
printf 'read  a-key-of-twenty-chars\n# comment\nadmin another-key-0123456' > corpus/auth_header/keys

for t in "${targets[@]}"; do
  # A CIFF file is a whole collection: long inputs only slow the reader down, so they are cut at 64 KiB.
  max_len=1048576
  [ "$t" = ciff ] && max_len=65536
  echo "== $t: at most $secs s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
  start=$(date +%s)
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -runs="${FUZZ_RUNS:--1}" \
    -rss_limit_mb=4096 -max_len="$max_len" -print_final_stats=1 2>&1 |
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panicked|Done|ERROR" || true
  echo "   $(($(date +%s) - start)) s"
done
