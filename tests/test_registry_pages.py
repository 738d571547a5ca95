"""The training-run and model-version pages in the operator's words: labelled tables, the operating point in a sentence."""

import pytest

from chatbot.registry.charts import operating_point_words, tradeoff_chart
from chatbot.registry.explain import numbers_table
from chatbot.registry.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db
CALIBRATION = {
    "points": [
        {"threshold": 0.1, "coverage": 0.95, "precision": 0.88},
        {"threshold": 0.2, "coverage": 0.9, "precision": 0.93},
        {"threshold": 0.3, "coverage": 0.8, "precision": 0.97},
    ]
}


def test_counts_and_metrics_are_a_labelled_table_with_a_meaning_each():
    html = numbers_table({"pairs": 128, "held_out": {"accuracy": 0.91234, "oos_f1": 0.7}, "curve": [1, 2]})
    assert "<th scope='row'>Q&amp;A pairs</th><td class='number'>128</td><td>Curated answers" in html
    assert "held-out examples: accuracy</th><td class='number'>0.9123</td>" in html
    assert "not-sure F1" in html and "curve" not in html
    assert numbers_table({}) == "<p>None recorded.</p>"


def test_the_operating_point_is_said_in_words():
    words = operating_point_words(CALIBRATION, 0.21)
    assert words.startswith("At this threshold (0.210) the bot answers 90 % of the questions it has an answer for")
    assert "is right on 93 % of its answers" in words
    assert operating_point_words({}, 0.2) == ""


def test_the_threshold_label_stays_inside_the_chart_on_the_right():
    svg = tradeoff_chart(CALIBRATION, 0.29)
    assert 'text-anchor="end" fill="#e67e22">in use 0.29' in svg


def test_the_version_and_run_pages_show_the_tables(admin_client):
    version = ModelVersion.objects.get(is_active=True)
    page = admin_client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "class='numbers'" in page and "At this threshold" in page
    run = TrainingRun.objects.filter(model_version=version).first()
    page = admin_client.get(f"/admin/registry/trainingrun/{run.pk}/change/").content.decode()
    assert "training examples" in page and "Kept aside to measure" in page


def test_the_version_page_shows_the_per_language_thresholds_and_a_set_threshold_replaces_them(admin_client):
    # given: a version with a rule of its own for Chinese
    version = ModelVersion.objects.get(is_active=True)
    version.language_rules = {"zh": {"threshold": 0.9, "margin": 0.1}}
    version.save(update_fields=["language_rules"])
    url = f"/admin/registry/modelversion/{version.pk}/change/"
    assert "Chinese: threshold 0.900, margin 0.100" in admin_client.get(url).content.decode()
    # when: an operator sets the threshold
    response = admin_client.post(
        f"/admin/registry/modelversion/{version.pk}/threshold/", {"threshold": "0.4"}, follow=True
    )
    # then: the message says the per-language rule is replaced, and the page shows none
    page = response.content.decode()
    assert (
        "threshold set to 0.400 for every language; it replaces the per-language thresholds chosen at training" in page
    )
    assert "Chinese: threshold 0.900" not in admin_client.get(url).content.decode()
    version.refresh_from_db()
    assert (version.threshold, version.language_rules) == (0.4, {})
