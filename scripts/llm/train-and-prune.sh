#!/usr/bin/env bash
# Trains SmolLM2-135M-Instruct as a dense embedder on the title -> text pairs of SciFact and
# Cranfield, evaluates it against the untrained model on both, prunes it (layer cut at several
# depths, magnitude and GAPrune at 50%), evaluates every pruned model on Cranfield and measures
# each one's encoding speed. The tables of docs/LLM.md come from this script.
#
# Usage: scripts/llm/train-and-prune.sh [WORK_DIR]   (default llm-work/; about 3 hours on 2 CPU cores)
# Needs: target/release/bmp-index (cargo build --release), models/ (scripts/setup-models.sh),
# the BEIR datasets in ../shared/data or $BMP_DATA.
set -euo pipefail

work=${1:-llm-work}
data=${BMP_DATA:-../shared/data}
bin=${BMP_INDEX:-target/release/bmp-index}
source_model=models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
trained=$work/smollm2-sc-dense
mkdir -p "$work"

# Both corpora as one, ids prefixed so that they stay unique.
python3 - "$data" "$work/combined.jsonl" <<'EOF'
import json, sys
data, out = sys.argv[1], sys.argv[2]
with open(out, "w") as w:
    for prefix, name in (("s", "scifact"), ("c", "cranfield")):
        with open(f"{data}/{name}/corpus.jsonl") as r:
            for line in r:
                doc = json.loads(line)
                doc["_id"] = prefix + doc["_id"]
                w.write(json.dumps(doc) + "\n")
EOF

"$bin" train --model "$source_model" --corpus "$work/combined.jsonl" --output "$trained" \
    --steps 80 --batch-size 8 --held-out 64 --query-max-length 32 --doc-max-length 64 \
    --learning-rate 3e-5 --sparse-weight 0 2>&1 | tee "$work/train.log"

evaluate() { # dataset model log
    "$bin" eval --dataset "$data/$1" --model "$2" --dense --pooling mean --max-length 64 \
        --work-dir "$work/w-$1" 2>&1 | tee "$work/eval-$1-$3.log"
}
for dataset in scifact cranfield; do
    evaluate "$dataset" "$source_model" untrained
    evaluate "$dataset" "$trained" trained
done
for dataset in scifact cranfield; do
    "$bin" eval --dataset "$data/$dataset" --model models/splade-tiny --max-length 64 --bm25 \
        --work-dir "$work/w-$dataset" 2>&1 | tee "$work/eval-$dataset-splade64.log"
done

"$bin" prune layer-cut --model "$trained" --auto --corpus "$data/cranfield/corpus.jsonl" \
    --output "$work/cut-auto" | tee "$work/prune-cut-auto.log"
for keep in 25 20 10; do
    "$bin" prune layer-cut --model "$trained" --keep "$keep" --output "$work/cut-$keep"
done
"$bin" prune magnitude --model "$trained" --sparsity 0.5 --output "$work/mag50"
# GAPrune with CACM as the general corpus (64 and 256 pairs each), and with SciFact (64).
for setting in cacm:64 cacm:256 scifact:64; do
    general=${setting%:*}
    pairs=${setting#*:}
    "$bin" prune gaprune --model "$trained" --sparsity 0.5 --pairs "$pairs" \
        --domain-corpus "$data/cranfield/corpus.jsonl" --general-corpus "$data/$general/corpus.jsonl" \
        --output "$work/gap50-$general-$pairs"
done
variants="cut-25 cut-20 cut-10 cut-auto mag50 gap50-cacm-64 gap50-cacm-256 gap50-scifact-64"
for variant in $variants; do
    evaluate cranfield "$work/$variant" "$variant"
done

# Encoding speed on its own (the docs/s that eval prints counts whatever else shares the CPU):
# the first 160 Cranfield documents through each model in turn, two rounds.
head -n 160 "$data/cranfield/corpus.jsonl" > "$work/speed.jsonl"
for round in 1 2; do
    for variant in smollm2-sc-dense $variants; do
        model=$work/$variant
        printf '%s %s ' "$round" "$variant"
        "$bin" encode --model "$model" --input "$work/speed.jsonl" --output "$work/speed-out.jsonl" \
            --max-length 64 2>&1 | grep -o '[0-9.]* docs/s encoding'
    done
done | tee "$work/speed.txt"
