#!/usr/bin/env bash
# Every benchmark in BENCHMARKS.md, in order (hours on a 2-core machine; each line can be run alone).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
bash bench/quality/run.sh
bash bench/serving.sh --loads 1x100,50x10,200x10,1000x3 --rounds 3 --idle 5000 --hold 30   # needs ../shared/floor-rig
python bench/faults/drill.py all --fresh --clients 20 --seconds 30 --drain 60
python bench/learning/retrain_time.py --json
python bench/learning/learning_curve.py --rounds 4 --json
python bench/learning/hotswap.py
