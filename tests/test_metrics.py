"""Observability: the Prometheus endpoint, JSON logs with ids, the workers' health reports."""

import json
import logging

import pytest
from django.core.management import CommandError, call_command

from chatbot.health import heartbeat_once, workers_status
from chatbot.logs import JsonFormatter
from chatbot.metrics import metrics_answer, metrics_message_received


def scrape(client) -> dict[str, float]:  # noqa: ANN001
    response = client.get("/metrics")
    assert response.status_code == 200
    values = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


@pytest.mark.django_db
def test_metrics_count_messages_answers_confidence_and_latency(client):
    before = scrape(client)
    metrics_message_received()
    metrics_answer(outcome="answer", confidence=0.93, inference_seconds=0.004)
    after = scrape(client)
    assert after["chatbot_messages_received_total"] == before["chatbot_messages_received_total"] + 1
    assert after['chatbot_answers_total{outcome="answer"}'] == before['chatbot_answers_total{outcome="answer"}'] + 1
    assert (
        after['chatbot_answer_confidence_bucket{le="0.95"}']
        == before['chatbot_answer_confidence_bucket{le="0.95"}'] + 1
    )
    assert (
        after['chatbot_inference_seconds_bucket{le="0.005"}'] > before['chatbot_inference_seconds_bucket{le="0.005"}']
    )
    assert 'chatbot_queue_depth{queue="inference"}' in after
    assert 'chatbot_training_runs_total{status="succeeded"}' in after
    assert any(name.startswith("django_http_requests") for name in after)


@pytest.mark.django_db
def test_metrics_are_not_public(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_logs_are_json_with_ids():
    record = logging.LogRecord("chatbot.x", logging.INFO, __file__, 1, "message %s answered", (7,), None)
    record.conversation_id, record.message_id = 3, 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "message 7 answered" and entry["conversation_id"] == 3 and entry["message_id"] == 7


@pytest.mark.django_db
def test_a_worker_reports_the_model_it_serves_and_the_health_check_reads_it():
    report = heartbeat_once()
    assert report["loaded_version"] is not None and report["error"] == ""
    assert any(w["loaded_version"] == report["loaded_version"] for w in workers_status())
    call_command("worker_health", stdout=open("/dev/null", "w"))


@pytest.mark.django_db
def test_the_worker_health_check_fails_without_workers(settings):
    settings.REDIS_PREFIX = settings.REDIS_PREFIX + "empty:"
    with pytest.raises(CommandError, match="no inference worker"):
        call_command("worker_health", stdout=open("/dev/null", "w"))
