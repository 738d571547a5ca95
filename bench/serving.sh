#!/usr/bin/env bash
# Round trip over the production stack on this machine: daphne + Celery worker + Redis + PostgreSQL,
# the real model side by side with the no-op floor. Usage: bash bench/serving.sh [--levels 1 50 200 1000] [--idle 5000]
# Uses database `chatbot_bench` and Redis db 2 (BENCH_DATABASE_URL, BENCH_REDIS_URL); see bench/serving.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-.venv/bin/python}" bench/serving.py "$@"
