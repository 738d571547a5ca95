#!/usr/bin/env bash
# Answer-quality benchmarks: one JSON line per (dataset, encoder, float/int8) into bench/quality/out/.
# Usage: bench/quality/run.sh [encoder ...]   (default: ngram transformer fusion)
# Runs one training at a time (2-core machine). THREADS=1 is faster when other jobs share the cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${DATASETS:-../shared/datasets}
OUT=bench/quality/out
THREADS=${THREADS:-1}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
encoders=("${@:-ngram transformer fusion}")
for enc in ${encoders[@]}; do
  for q in "" "--quantize"; do
    [[ $enc == ngram && -n $q ]] && continue  # nothing worth quantising
    tag=$enc${q:+-int8}
    python -m training.evaluate --train "$D/clinc150/train.csv" --val "$D/clinc150/val.csv" \
      --test "$D/clinc150/test.csv" --encoder "$enc" --threads "$THREADS" $q --json > "$OUT/clinc150-$tag.json"
    python -m training.evaluate --train "$D/kuake_qic/train.csv" --test "$D/kuake_qic/val.csv" \
      --encoder "$enc" --threads "$THREADS" $q --json > "$OUT/kuake_qic-$tag.json"
  done
done
python bench/quality/demo_kb.py "$D" "$OUT"
for enc in ngram fusion; do
  python -m training.evaluate --train "$OUT/demo_kb_train.csv" --test "$OUT/demo_kb_test.csv" --encoder "$enc" \
    --threads "$THREADS" --json > "$OUT/demo_kb-$enc.json"
done
python bench/quality/summarise.py "$OUT"/*.json
