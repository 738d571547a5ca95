#!/usr/bin/env bash
# Round trip over the production stack on this machine: daphne + Celery worker + Redis + PostgreSQL.
# Usage: bash bench/serving.sh [levels...]   (default: 1 50 200)
# Uses database `chatbot_bench` and Redis db 2; the rate limit is raised so the clients measure the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LEVELS=${*:-1 50 200}
PORT=${PORT:-8765}
OUT=bench/results; mkdir -p "$OUT"
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatbot_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/2}
export SECRET_KEY=bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz
export ALLOWED_HOSTS=127.0.0.1,localhost SECURE_SSL_REDIRECT=0 SECURE_COOKIES=0 LOG_LEVEL=WARNING
export CHATBOT_RATE_BURST=1000 CHATBOT_RATE_PER_SECOND=1000
export CHATBOT_VAR_DIR=${CHATBOT_VAR_DIR:-/tmp/chatbot-bench}

psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='chatbot_bench'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE chatbot_bench" >/dev/null
redis-cli -n 2 flushdb >/dev/null
$PY manage.py migrate --noinput -v0
$PY manage.py load_demo -v0

$PY -m daphne -b 127.0.0.1 -p "$PORT" chatbot.asgi:application >"$OUT/web.log" 2>&1 &
WEB=$!
$PY -m celery -A chatbot worker -Q inference,training --concurrency "${WORKERS:-2}" --loglevel WARNING >"$OUT/worker.log" 2>&1 &
WORKER=$!
trap 'kill $WEB $WORKER 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 1; done
sleep 3

for n in $LEVELS; do
  m=$(( n >= 200 ? 10 : 20 ))
  $PY bench/load.py --url "ws://127.0.0.1:$PORT/ws/chat/" --clients "$n" --messages "$m" --json | tee "$OUT/serving-$n.json"
done
