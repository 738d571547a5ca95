"""The learning loop over the running stack: a real daphne, a real Celery worker, PostgreSQL and Redis."""

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection

from chatbot.conversations.models import Message
from chatbot.knowledge.models import QAPair
from chatbot.registry import services
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.services import model_version_activate, training_run_create
from chatbot.review.models import ReviewItem
from chatbot.review.services import review_new_pair
from tests.conftest import ROOT, free_port, wait_for_http, wait_for_worker
from tests.e2e import ws_ask, ws_open

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("committed_db")]
QUESTION, SECOND_WORDING, PARAPHRASE = (
    "do you offer a student discount",
    "is there a discount for students?",
    "any student discounts?",
)
ANSWER = "Yes: students get 10% off with a valid student card. Verify it once under My account."


def _retrain_and_wait(outputs: list[str]) -> None:
    out = io.StringIO()
    try:
        call_command("retrain", wait=True, timeout=600, stdout=out)
    finally:
        outputs.append(out.getvalue())
        connection.close()


def _wait_for(condition, timeout: float, message: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def ask_served_by(ws, text: str, version: ModelVersion, timeout: float = 15) -> dict:  # noqa: ANN001
    """Ask until the answer comes from `version`: workers look at the active version at most every
    CHATBOT_MODEL_CHECK_SECONDS."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ws_ask(ws, text)
        if Message.objects.get(pk=answer["message_id"]).model_version_id == version.pk:
            return answer
        assert time.monotonic() < deadline, f"no answer from {version} within {timeout} s"
        time.sleep(0.5)


def test_it_learns_an_unanswerable_question_from_the_review_queue_without_restarting_the_worker(stack):
    # given: a customer asks what the knowledge base cannot answer, twice, and says the answers did not help
    worker_pid, before = stack.worker.pid, ModelVersion.objects.get(is_active=True)
    runs_before = TrainingRun.objects.order_by("pk").values_list("pk", flat=True).last() or 0
    ws, _ = ws_open(stack)
    asked = [ws_ask(ws, QUESTION), ws_ask(ws, SECOND_WORDING)]
    for answer in asked:
        ws.send(json.dumps({"type": "feedback", "message_id": answer["message_id"], "helpful": False}))

    # when: the worker brings the review queue up to date on its own (the admin page only reads it)
    def queued() -> list[ReviewItem]:
        found = ReviewItem.objects.filter(
            status="pending", needs_review=True, negative_feedback=True, message__text__in=[QUESTION, SECOND_WORDING]
        )
        return list(found.order_by("message_id"))

    _wait_for(lambda: len(queued()) == 2, 30, "the worker did not refresh the review queue")
    # and an operator makes a new pair of them
    items = queued()
    assert items[0].cluster == items[1].cluster, "the two wordings are grouped"
    pair = review_new_pair(items=items, question=QUESTION, answer=ANSWER, language="en", category="payment", user=None)
    # and two retrain requests arrive at the same moment
    outputs: list[str] = []
    threads = [threading.Thread(target=_retrain_and_wait, args=(outputs,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one run trained, gated and put the new version in service
    runs = list(TrainingRun.objects.filter(pk__gt=runs_before))
    assert len(runs) == 1, [str(run) for run in runs]
    run = runs[0]
    assert run.status == TrainingRun.Status.SUCCEEDED, f"{run.error}\n{run.gate.get('checks')}\n{outputs}"
    assert all("finished" in output for output in outputs), outputs
    assert run.gate["passed"] and run.gate["active_version"] == before.pk and run.counts["reviewed_messages"] >= 1
    assert run.history and run.progress == 1.0 and run.model_version.checksum
    new = ModelVersion.objects.get(is_active=True)
    assert new == run.model_version != before
    # and the running worker answers the question and a paraphrase with the new pair
    for text in (QUESTION, PARAPHRASE):
        answer = ask_served_by(ws, text, new)
        assert answer["outcome"] == "answer" and answer["text"] == ANSWER, (text, answer)
    assert stack.worker.pid == worker_pid and stack.worker.poll() is None, "the worker was not restarted"
    ws.close()
    assert pair.pk


def test_a_rollback_restores_the_earlier_versions_answers(stack):
    # given: the version learned above in service, the one before it retired
    current = ModelVersion.objects.get(is_active=True)
    earlier = ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, created_at__lt=current.created_at).first()
    if earlier is None or not QAPair.objects.filter(question=QUESTION).exists():
        pytest.skip("needs the version trained by the learning-loop test")
    ws, _ = ws_open(stack)
    assert ask_served_by(ws, QUESTION, current)["text"] == ANSWER
    try:
        # when
        model_version_activate(earlier)
        # then: the earlier model does not know the new pair
        assert ask_served_by(ws, QUESTION, earlier)["text"] != ANSWER
    finally:
        model_version_activate(current)
    assert ask_served_by(ws, QUESTION, current)["text"] == ANSWER
    ws.close()


def test_a_killed_training_worker_leaves_the_active_model_in_service_and_the_run_failed(stack):
    # given: a training run in progress in the worker
    active = ModelVersion.objects.get(is_active=True)
    run = training_run_create(trigger=TrainingRun.Trigger.ADMIN)

    def training() -> bool:
        run.refresh_from_db()
        return run.status == TrainingRun.Status.RUNNING and len(run.history) >= 1

    _wait_for(training, 300, "the run never started training")
    # when: the worker and its pool process are killed, and a new worker starts
    stack.replace_worker(f"worker-after-training-{run.pk}")
    # then: the run is failed with the reason, and the same model answers
    _wait_for(lambda: run.refresh_from_db() or run.status == TrainingRun.Status.FAILED, 60, "the run stayed running")
    assert "training worker stopped" in run.error
    assert ModelVersion.objects.get(is_active=True) == active
    ws, _ = ws_open(stack)
    answer = ws_ask(ws, "where is my parcel")
    assert answer["outcome"] == "answer"
    ws.close()


def test_a_retrain_request_while_one_is_queued_reuses_it(monkeypatch):
    # given: the task is not sent for real
    sent: list[int] = []
    monkeypatch.setattr(services.celery_app, "send_task", lambda name, args: sent.append(args[0]))
    barrier, runs = threading.Barrier(4), []

    def request() -> None:
        barrier.wait()
        runs.append(training_run_create(trigger=TrainingRun.Trigger.COMMAND).pk)
        connection.close()

    # when: four requests at the same moment
    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one run, sent once
    try:
        assert len(set(runs)) == 1 and sent == [runs[0]]
    finally:
        TrainingRun.objects.filter(pk__in=runs).delete()


def _embedded_env(var_dir) -> dict[str, str]:  # noqa: ANN001
    """`make run`'s settings: no DATABASE_URL or REDIS_URL, so SQLite, the in-memory channel layer, answers
    computed in the web process and the file-system Celery broker, all under a var dir of its own."""
    drop = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS")
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(
        CHATBOT_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="chatbot.settings",
        PYTHONUNBUFFERED="1",
        CHATBOT_TRAIN_EPOCHS="3",
        CHATBOT_MODEL_CHECK_SECONDS="0.5",
    )
    return env


def test_embedded_mode_retrains_through_the_file_system_broker_while_the_web_process_answers(tmp_path):
    # given: `make run` on a fresh var dir: migrate, load_demo (first model), the web process and the
    # training worker of Procfile.embedded
    env, manage = _embedded_env(tmp_path), [sys.executable, "manage.py"]
    for command in (["migrate", "-v0"], ["load_demo"]):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    port = free_port()
    worker_command = "celery -A chatbot worker --queues training --concurrency 1 --pool solo --beat"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", *worker_command.split(), "--loglevel", "INFO", "--hostname", "embedded@%h"],
            cwd=ROOT, env=env, stdout=open(tmp_path / "worker.log", "ab"), stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            manage + ["runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT, env=env, stdout=open(tmp_path / "web.log", "ab"), stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    answers, stop = [], threading.Event()

    def customer() -> None:  # one question a second (the per-connection limit) while the training runs
        ws, _ = ws_open(SimpleNamespace(ws_url=f"ws://127.0.0.1:{port}/ws/chat/", origin=f"http://127.0.0.1:{port}"))
        while not stop.is_set():
            answers.append(ws_ask(ws, "where is my parcel"))
            time.sleep(1.1)
        ws.close()

    try:
        wait_for_worker(tmp_path, name="worker")
        wait_for_http(port)
        asking = threading.Thread(target=customer)
        asking.start()
        # when
        retrain = subprocess.run(
            manage + ["retrain", "--wait", "--timeout", "500"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        time.sleep(3)  # the web process looks at the active version every CHATBOT_MODEL_CHECK_SECONDS
        stop.set()
        asking.join(timeout=60)
    finally:
        stop.set()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    # then: the run went through the file-system broker and the worker, and put v2 in service
    assert retrain.returncode == 0 and "v2" in retrain.stdout and "in service" in retrain.stdout, retrain
    # and every question asked during the training was answered (no "database is locked" on SQLite)
    logs = "".join((tmp_path / name).read_text(errors="replace") for name in ("web.log", "worker.log"))
    assert answers and all(answer["type"] == "answer" for answer in answers), answers
    assert "database is locked" not in logs and "Traceback" not in logs, logs[-3000:]
    # and the web process switched to the new version without a restart
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        versions = dict(
            db.execute(
                "SELECT model_version_id, COUNT(*) FROM conversations_message WHERE sender = 'bot' GROUP BY 1"
            ).fetchall()
        )
    assert versions.get(1) and versions.get(2), versions
