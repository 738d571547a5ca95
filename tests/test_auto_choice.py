"""The automatic choice of a model inside the product: training runs, the first start and the admin pages.

The suite forces CHATBOT_ENCODER=ngram (tests/settings.py); these tests turn the automatic choice on with a budget
so small that only the `ngram` candidate trains (the slower candidates and their budget cut-off are trained for real
in tests/training/test_auto.py).
"""

import pytest
from django.core.management import call_command

from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.pipeline import training_run_execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def automatic(settings):  # noqa: ANN001
    settings.CHATBOT_ENCODER = ""
    settings.CHATBOT_MODEL_OPTIONS = {}
    settings.CHATBOT_TRAIN_BUDGET_SECONDS = 0.001
    settings.CHATBOT_TRAIN_EPOCHS = 6
    return settings


def test_a_run_tries_the_candidates_within_the_budget_and_stores_them(automatic):
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN))
    assert run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.REJECTED), run.error
    run.refresh_from_db()
    assert run.encoder == "ngram"  # the candidate chosen (the list of runs shows it)
    names = [c["name"] for c in run.candidates]
    assert names == ["ngram", "fusion-e5-contrastive"]  # the demo knowledge base is half Chinese, ~26 per answer
    ngram, e5 = run.candidates
    assert ngram["chosen"] and ngram["status"] == "trained" and ngram["seconds"] > 0
    assert ngram["held_out"]["n"] == run.counts["held_out"] and 0 < ngram["held_out"]["accuracy"] <= 1
    assert "only candidate that finished" in ngram["reason"]
    assert e5["status"] == "skipped" and not e5["chosen"] and e5["reason"]
    # the version says its recipe in plain words
    assert run.model_version.metrics["recipe"] == "n-gram classifier (no pretrained encoder)"
    assert [event["candidate"] for event in run.history][:1] == ["ngram"]


def test_the_settings_still_force_a_recipe(settings):  # noqa: ANN001
    settings.CHATBOT_ENCODER = "ngram"
    settings.CHATBOT_TRAIN_EPOCHS = 6
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN))
    assert run.encoder == "ngram"
    (only,) = run.candidates
    assert only["chosen"] and only["name"] == "ngram" and "CHATBOT_ENCODER" in only["reason"]


def test_the_first_start_puts_the_fast_model_in_service_and_queues_the_choice(automatic):
    ModelVersion.objects.update(is_active=False)  # a fresh install: no model in service yet
    call_command("load_demo", verbosity=0)
    first, queued = TrainingRun.objects.order_by("-created_at")[1], TrainingRun.objects.order_by("-created_at")[0]
    assert first.status == TrainingRun.Status.SUCCEEDED and first.encoder == "ngram"
    assert [c["name"] for c in first.candidates] == ["ngram"]
    assert first.candidates[0]["reason"].startswith("First start")
    assert queued.status == TrainingRun.Status.QUEUED and queued.trigger == TrainingRun.Trigger.DEMO
    assert ModelVersion.objects.get(is_active=True) == first.model_version


def test_the_run_page_lists_the_candidates_and_the_version_page_says_the_recipe(automatic, admin_client):
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN))
    page = admin_client.get(f"/admin/registry/trainingrun/{run.pk}/change/").content.decode()
    assert "Candidates: the recipes tried, scored on the held-out set" in page
    assert "<th>answered right</th><th>out-of-scope F1</th>" in page
    assert "ngram <strong>(chosen)</strong>" in page and "is the only candidate that finished" in page
    assert "fusion-e5-contrastive" in page and "skipped" in page
    version = run.model_version
    page = admin_client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "Recipe: <strong>n-gram classifier (no pretrained encoder)</strong>" in page
