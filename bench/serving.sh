#!/usr/bin/env bash
# Round trip over the production stack on this machine: daphne + Celery worker + Redis + PostgreSQL,
# beside the bare floor rig (../shared/floor-rig). Usage: bash bench/serving.sh [--loads 1x100,50x10,200x10] [--rounds 3]
# Uses database `chatbot_bench` and Redis db 8 (BENCH_DATABASE_URL, BENCH_REDIS_URL); see bench/serving.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-.venv/bin/python}" bench/serving.py "$@"
