"""The admin dashboard against 1,000,000 stored messages over 30 days, in a database of its own.

    python bench/dashboard.py                      # create bench_dashboard, fill it, measure
    python bench/dashboard.py --keep --loads 20    # reuse a filled database

Fills PostgreSQL with generate_series (100,000 conversations of 5 questions and 5 replies each, spread
over the last 30 days, a third in Chinese, a quarter from each of two shop sites; outcomes, confidence,
latency, feedback and pairs drawn at random; the review queue's items for the unanswered ones, grouped by
their words; stored in time order and vacuumed, as a live table is), loads /admin/dashboard/?period=30d
(all conversations, then one of the two sites, then one language) --loads times each through Django's
test client (the whole view: every figure's query and the template) after the rollup task has counted the
closed days (today is read live, as in production), and prints p50/p95 per page with each figure's own
time (unfiltered) and the EXPLAIN ANALYZE of the slowest one, as JSON.
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = 100_000
PER_CONVERSATION = 5  # questions, each with its reply: 10 messages

FILL = f"""
INSERT INTO shop_sites_site (name, key, allowed_origins, colour, greeting_en, greeting_zh, is_active, created_at)
SELECT 'Bench shop ' || s, 'bench-shop-' || s, 'https://shop' || s || '.example.com', '#0b5fff', '', '', true, now()
FROM generate_series(1, 2) s;

INSERT INTO conversations_conversation (token, started_at, last_seen_at, language, handed_off, owner, site_id)
SELECT 'bench-' || g, now() - random() * interval '30 days', now(), CASE WHEN g % 3 = 0 THEN 'zh' ELSE 'en' END, false,
       'bot', CASE g % 4 WHEN 1 THEN (SELECT min(id) FROM shop_sites_site) WHEN 2 THEN (SELECT max(id) FROM shop_sites_site) END
FROM generate_series(1, {CONVERSATIONS}) g;

INSERT INTO conversations_message (conversation_id, sender, text, created_at, client_id, outcome, candidates, suggestions,
       for_person)
SELECT c.id, 'customer', (ARRAY['where is my parcel', 'refund please', '退货政策', 'can I pay with seashells',
       '这个怎么办', 'do you ship to Mars'])[1 + (c.id * 7 + k) % 6],
       least(c.started_at + k * interval '2 minutes', now()), 'b' || k, '', '[]', '[]', false
FROM conversations_conversation c, generate_series(1, {PER_CONVERSATION}) k
WHERE c.token LIKE 'bench-%'
ORDER BY 4;  -- stored in time order, as a live site appends them

INSERT INTO conversations_message (conversation_id, sender, text, created_at, client_id, reply_to_id, pair_id, outcome,
       confidence, candidates, suggestions, model_version_id, latency_ms, helpful, for_person)
SELECT m.conversation_id, 'bot', 'reply', m.created_at + interval '1 second', '', m.id,
       CASE WHEN r.x < 0.8 THEN (SELECT min(id) FROM knowledge_qapair) + (m.id % (SELECT count(*) FROM knowledge_qapair)) END,
       CASE WHEN r.x < 0.75 THEN 'answer' WHEN r.x < 0.8 THEN 'handoff' ELSE 'unsure' END,
       CASE WHEN r.x < 0.8 THEN 0.5 + r.x * 0.6 ELSE r.x * 0.2 END,
       '[{{"pair": 1, "score": 0.5}}]', '[]',
       (SELECT max(id) FROM registry_modelversion),
       2 + random() * 20,
       CASE WHEN random() < 0.1 THEN random() < 0.7 END, false
FROM conversations_message m CROSS JOIN LATERAL (SELECT random() + 0 * m.id AS x) r  -- per row, not once
WHERE m.sender = 'customer' AND m.client_id LIKE 'b%'
ORDER BY m.created_at;

-- the review queue's items for the unanswered questions, grouped by their words (the first such message leads)
INSERT INTO review_reviewitem (message_id, kind, question, status, needs_review, priority, no_answer, low_confidence,
       near_tie, negative_feedback, confidence, cluster, cluster_size)
SELECT m.id, 'question', '', 'pending', true, 3, true, true, false, false, b.confidence,
       min(m.id) OVER (PARTITION BY m.text), count(*) OVER (PARTITION BY m.text)
FROM conversations_message m JOIN conversations_message b ON b.reply_to_id = m.id
WHERE m.sender = 'customer' AND m.client_id LIKE 'b%' AND b.outcome = 'unsure';
VACUUM ANALYZE;  -- what autovacuum has done to a table filled over 30 days
"""


def setup(database: str, keep: bool) -> None:
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}"}
    if not keep:
        for statement in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if keep:
        return
    subprocess.run([sys.executable, "manage.py", "load_demo", "--no-train"], cwd=ROOT, env=env, check=True)
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", database]
    version = (
        "INSERT INTO registry_modelversion (created_at, status, is_active, encoder, artifact, checksum, threshold,"
        " margin, n_labels, n_examples, metrics, fingerprint, calibration)"
        " VALUES (now(), 'active', true, 'ngram', 'models/bench', '', 0.15, 0.01, 0, 0, '{}', '', '{}')"
    )
    started = time.perf_counter()
    subprocess.run([*psql, "-c", version], check=True)
    subprocess.run(psql, input=FILL, text=True, check=True)
    print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def measure(loads: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from chatbot.dashboard.figures import FIGURES
    from chatbot.dashboard.periods import PeriodForm
    from chatbot.dashboard.tallies import source_open
    from chatbot.dashboard.tasks import dashboard_rollup_task
    from chatbot.sites.models import Site

    setup_test_environment()
    started = time.perf_counter()
    rolled = dashboard_rollup_task.apply().get()  # what beat runs: every closed day not rolled up yet
    rollup_s = round(time.perf_counter() - started, 1)
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversations_message")
        messages = cursor.fetchone()[0]
    site = Site.objects.filter(key="bench-shop-1").values_list("pk", flat=True).first()
    pages = {"all": "period=30d", "one site": f"period=30d&site={site}", "one language": "period=30d&language=zh"}
    loaded = {}
    for name, query in pages.items():
        client.get(f"/admin/dashboard/?{query}")  # warm: connections, templates, caches
        times = []
        for _ in range(loads):
            started = time.perf_counter()
            response = client.get(f"/admin/dashboard/?{query}")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        times.sort()
        loaded[name] = {
            "query": query,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(round(0.95 * len(times))) - 1)], 1),
        }
    form = PeriodForm({"period": "30d"})
    assert form.is_valid()
    period = form.period_get()
    figures, plans = {}, {}
    for key, build in FIGURES.items():
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            build(source_open(period=period))
            figures[key] = round((time.perf_counter() - started) * 1000, 1)
        plans[key] = max(queries.captured_queries, key=lambda query: float(query["time"]))["sql"]
    live = {}  # the same figures read from the messages alone, for before/after at the same machine load
    for key, build in FIGURES.items():
        started = time.perf_counter()
        build(source_open(period=period, rollups=False))
        live[key] = round((time.perf_counter() - started) * 1000, 1)
    slowest = max(figures, key=figures.get)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + plans[slowest])
        plan = [row[0] for row in cursor.fetchall()]
    return {
        "messages": messages,
        "rollup_days": rolled,
        "rollup_s": rollup_s,
        "loads": loads,
        "pages": loaded,
        "figure_ms": figures,
        "figure_ms_without_rollups": live,
        "slowest": slowest,
        "slowest_plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="bench_dashboard")
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse the filled database")
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # production settings refuse to start without
    setup(args.database, args.keep)
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        DJANGO_SETTINGS_MODULE="chatbot.settings",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",
        LOG_FORMAT="plain",
    )
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure(args.loads), indent=2))


if __name__ == "__main__":
    main()
