"""The learning loop inside one process: data split, gate, lock, skip, failures, operating point."""

import random

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from chatbot.knowledge.models import AlternateQuestion, PairAnswer, QAPair
from chatbot.knowledge.text import answer_plain
from chatbot.registry import pipeline, services
from chatbot.registry.artifacts import artifact_load
from chatbot.registry.dataset import Dataset, dataset_build
from chatbot.registry.engine import engine_get
from chatbot.registry.gate import calibrate, gate_compare, oos_weight
from chatbot.registry.lock import TRAINING_LOCK_KEY
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.pipeline import model_version_load, training_run_execute
from chatbot.registry.services import STALE_REASON, model_version_set_threshold
from training import ModelConfig
from training.calibration import language_rules_dict
from training.gate import decisions_at, metrics, paired_z, score_rows, tradeoff_curve
from training.rejection import Rejection

pytestmark = pytest.mark.django_db


@pytest.fixture
def active() -> ModelVersion:
    return ModelVersion.objects.get(is_active=True)


@pytest.fixture
def quick_training(settings):  # noqa: ANN001
    settings.CHATBOT_TRAIN_EPOCHS = 6


def test_it_holds_out_the_most_recent_reviewed_messages_and_a_stable_share_of_curated_ones():
    # given: ten reviewed messages attached to a pair, oldest first
    pair = QAPair.objects.first()
    for i in range(10):
        AlternateQuestion.objects.create(pair=pair, text=f"reviewed customer question {i}", source="log")
    # when
    first, second = dataset_build(share=0.2), dataset_build(share=0.2)
    # then: the two most recent are held out, the older ones are learned
    held = {text for text, _ in first.holdout if text.startswith("reviewed customer")}
    assert held == {"reviewed customer question 8", "reviewed customer question 9"}
    assert first.counts["reviewed_messages"] == 10 and first.counts["held_out_reviewed"] == 2
    # and the same curated rows are held out every time; every pair's question is learned
    assert first.holdout == second.holdout
    learned = {text for text, _ in first.train}
    assert set(QAPair.objects.filter(is_active=True).values_list("question", flat=True)) <= learned
    assert not learned & {text for text, _ in first.holdout}
    assert any(label == "oos" for _, label in first.holdout)


def test_it_learns_every_active_pairs_answers_as_plain_text_and_never_holds_them_out():
    pair, retired = QAPair.objects.all()[:2]
    before = dataset_build()
    # when: a pair's English answer is edited, with markup
    pair.translations.filter(language="en").update(text="We accept <b>Visa</b> &amp; <a href='/pay'>WeChat Pay</a>.")
    edited = dataset_build()
    # then: each of its answers is a training row of its label, markup removed, and the edit is a change (the
    # nightly run does not skip it)
    learned = [text for text, label in edited.train if label == str(pair.pk)]
    assert "We accept Visa & WeChat Pay." in learned
    assert answer_plain(pair.translations.get(language="zh").text) in learned
    assert edited.fingerprint({}) != before.fingerprint({})
    # and no answer is held out; an inactive pair's answers are not learned
    assert (
        not {answer_plain(t) for t in PairAnswer.objects.values_list("text", flat=True)} & dict(edited.holdout).keys()
    )
    QAPair.objects.filter(pk=retired.pk).update(is_active=False)
    dataset = dataset_build()
    assert not any(label == str(retired.pk) for _, label in dataset.train)
    assert dataset.counts["answers"] == PairAnswer.objects.filter(pair__is_active=True).count() > 0


def test_it_never_learns_from_unreviewed_messages():
    from chatbot.conversations.models import Conversation, Message

    before = dataset_build()
    conversation = Conversation.objects.create()
    Message.objects.create(conversation=conversation, sender="customer", text="an unreviewed customer message")
    after = dataset_build()
    assert (after.train, after.holdout) == (before.train, before.holdout)


def test_the_gate_passes_the_active_model_against_itself_and_stores_the_trade_off(active):
    model = model_version_load(active)
    dataset = dataset_build()
    result = gate_compare(model, model, dataset.holdout, margin=0.0)
    assert result["passed"] and result["n_disagreements"] == 0
    assert result["candidate"]["n_oos"] > 0 and result["candidate"]["accuracy"] > 0.3
    curve = tradeoff_curve(model, dataset.holdout)
    coverage = [point["coverage"] for point in curve["points"]]
    assert coverage == sorted(coverage, reverse=True) and coverage[0] > 0.9  # a higher threshold answers less
    assert active.calibration["points"], "the version carries its coverage/precision curve"
    # the demo's held-out set has enough rows in each language for a rule of its own (27 English and 41 Chinese
    # off-topic, about 150 answerable each):
    # stored with the version as the artifact saved it
    stored = artifact_load(name=active.artifact.name, checksum=active.checksum).rejection.languages
    assert set(stored) == {"en", "zh"}, (stored, dataset.counts)
    assert language_rules_dict(stored) == active.language_rules


def _corrupted(dataset: Dataset) -> Dataset:
    labels = [label for _, label in dataset.train]
    random.Random(0).shuffle(labels)
    return Dataset(
        [(text, label) for (text, _), label in zip(dataset.train, labels, strict=True)], dataset.holdout, dataset.counts
    )


def test_it_rejects_a_candidate_trained_on_corrupted_labels_and_keeps_the_active_model(
    active, quick_training, monkeypatch
):
    # given: training data whose labels are shuffled (the held-out set is not)
    monkeypatch.setattr(pipeline, "dataset_build", lambda: _corrupted(dataset_build()))
    run = TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND)
    # when
    run = training_run_execute(run)
    # then
    assert run.status == TrainingRun.Status.REJECTED, run.error
    assert "accuracy" in run.error
    assert ModelVersion.objects.get(is_active=True) == active
    assert run.model_version.status == ModelVersion.Status.REJECTED
    accuracy = next(check for check in run.gate["checks"] if check["metric"] == "accuracy")
    assert accuracy["candidate"] < accuracy["active"] - run.gate["margin"]
    assert run.gate["disagreements"] and run.gate["active_version"] == active.pk
    assert len(run.history) >= 1 and run.counts["pairs"] >= 64 and run.log


def test_it_fails_with_a_reason_on_an_empty_knowledge_base_and_keeps_the_active_model(active):
    QAPair.objects.update(is_active=False)
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN))
    assert run.status == TrainingRun.Status.FAILED
    assert "at least two active Q&A pairs" in run.error
    assert ModelVersion.objects.get(is_active=True) == active


def test_it_skips_a_scheduled_run_when_nothing_changed(active):
    fingerprint = dataset_build().fingerprint(pipeline.model_config().to_dict())
    TrainingRun.objects.create(
        trigger=TrainingRun.Trigger.ADMIN, status=TrainingRun.Status.SUCCEEDED, fingerprint=fingerprint
    )
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.SCHEDULE))
    assert run.status == TrainingRun.Status.SKIPPED
    assert run.model_version is None and ModelVersion.objects.get(is_active=True) == active


def test_it_does_not_train_while_another_process_holds_the_training_lock():
    # given: the lock taken by another database session
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [TRAINING_LOCK_KEY])
    try:
        run = TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND)
        # when
        run = training_run_execute(run)
        # then: it waits its turn
        assert run.status == TrainingRun.Status.QUEUED
    finally:
        other.close()


def test_it_marks_a_run_left_running_by_a_dead_worker_failed():
    run = TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN, status=TrainingRun.Status.RUNNING)
    services.training_runs_reconcile()  # what a starting worker does
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.error == STALE_REASON


def test_the_operating_point_is_applied_by_the_engine_without_a_reload(active):
    loaded = engine_get()
    model_version_set_threshold(active, threshold=0.9)
    again = engine_get()
    assert again is loaded and again.model.threshold == 0.9
    with pytest.raises(ValueError):
        model_version_set_threshold(active, threshold=1.5)


def test_the_gate_tolerates_a_loss_within_chance_but_not_a_clear_one():
    noise = paired_z([True] * 8 + [False] * 13, [False] * 8 + [True] * 13)  # 8 won, 13 lost
    clear = paired_z([False] * 40 + [True] * 2, [True] * 40 + [False] * 2)
    assert noise < 1.64 < clear


class _Scripted:
    """A model whose best label and top-1 score per text are given (top-2 is a quarter of top-1): the gate reads
    only predict(), the operating point and the config."""

    def __init__(self, answers: dict[str, tuple[str, float]], transform=lambda score: score) -> None:  # noqa: ANN001
        self.answers, self.transform = answers, transform
        self.rejection, self.config = Rejection(), ModelConfig()

    def predict(self, texts: list[str], k: int = 2) -> list[list[tuple[str, float]]]:
        ranked = [self.answers[text] for text in texts]
        return [[(label, self.transform(score)), ("other", self.transform(score) / 4)] for label, score in ranked]


def _scripted_holdout() -> tuple[list[tuple[str, str]], dict[str, tuple[str, float]]]:
    """300 in-scope rows (270 answered right with scores 0.45-1.0, 30 wrong with 0.2-0.5) and 20 out-of-scope
    rows (scores 0.1-0.4): out of scope is 6 % of the rows, as on a held-out set full of reviewed questions."""
    rng, holdout, answers = random.Random(1), [], {}
    for i in range(320):
        text, gold = f"question {i}", ("oos" if i >= 300 else f"p{i % 10}")
        if gold == "oos":
            answers[text] = ("p0", rng.uniform(0.1, 0.4))
        elif i < 270:
            answers[text] = (gold, rng.uniform(0.45, 1.0))
        else:
            answers[text] = (f"p{(i + 1) % 10}", rng.uniform(0.2, 0.5))
        holdout.append((text, gold))
    return holdout, answers


def test_the_operating_point_is_chosen_on_the_held_out_set_with_out_of_scope_at_its_assumed_share(settings):  # noqa: ANN001
    holdout, answers = _scripted_holdout()
    model, gold = _Scripted(answers), [label for _, label in holdout]
    settings.CHATBOT_GATE_OOS_SHARE = 0.2
    # the weight makes the 20 out-of-scope rows count as 20 % of the traffic
    assert oos_weight([label == "oos" for label in gold]) == pytest.approx(0.25 * 300 / 20)
    # when
    rule = calibrate(model, holdout)
    # then: threshold and margin that keep every right answer and catch most out-of-scope questions
    assert rule is not None
    decided = metrics(gold, decisions_at(score_rows(model, holdout), rule))
    assert decided["accuracy"] == pytest.approx(0.9) and decided["oos_recall"] >= 0.6, (rule, decided)
    assert calibrate(model, [row for row in holdout if row[1] != "oos"]) is None  # the trainer's point is kept


def test_the_gate_compares_each_model_at_its_own_calibrated_operating_point():
    # given: a candidate that ranks exactly like the active model but on another score scale, so that the
    # active model's threshold (and its own stored one, 0) would say "not sure" to the wrong questions
    holdout, answers = _scripted_holdout()
    active, candidate = _Scripted(answers), _Scripted(answers, transform=lambda score: score**3)
    active.rejection = Rejection(threshold=0.4)
    # when
    result = gate_compare(candidate, active, holdout, margin=0.0)
    # then: the two measure the same, and the candidate passes
    assert result["passed"] and result["n_disagreements"] == 0
    assert result["candidate"] == result["active"] and result["candidate"]["oos_recall"] >= 0.4
    assert result["active_in_service"]["oos_recall"] >= 0.9  # as it answers in service, at its own threshold


def test_a_model_that_cannot_reach_the_precision_target_still_says_not_sure_to_off_topic_questions():
    # given: out-of-scope questions scored like the model's wrong answers, so that "not sure" reaches an
    # out-of-scope precision of 0.85 only by saying it almost never
    holdout, answers = _scripted_holdout()
    rng = random.Random(2)
    for text, gold in holdout:
        if gold == "oos" or answers[text][0] != gold:
            answers[text] = (answers[text][0], rng.uniform(0.1, 0.4))
    model = _Scripted(answers)
    # when
    rule = calibrate(model, holdout)
    # then: the trainer's rule without out-of-scope examples (give up at most 5 % of the right answers) is used
    assert rule is not None
    decided = metrics([label for _, label in holdout], decisions_at(score_rows(model, holdout), rule))
    assert decided["oos_recall"] >= 0.9 and decided["accuracy"] >= 0.85, (rule, decided)


def test_model_options_come_from_the_settings_and_a_misspelt_one_is_refused(settings):
    settings.CHATBOT_MODEL_OPTIONS = {"finetune_objective": "classify", "finetune_epochs": 3}
    config = pipeline.model_config()
    assert (config.finetune_objective, config.finetune_epochs) == ("classify", 3)
    assert config.encoder == ModelConfig().encoder
    assert config.oos_prior == settings.CHATBOT_GATE_OOS_SHARE  # trainer and gate assume the same traffic
    settings.CHATBOT_MODEL_OPTIONS = {"oos_prior": 0.05}
    assert pipeline.model_config().oos_prior == 0.05

    settings.CHATBOT_MODEL_OPTIONS = {"finetune_epoch": 3}
    with pytest.raises(ImproperlyConfigured, match="finetune_epoch"):
        pipeline.model_config()


def _two_language_holdout() -> tuple[list[tuple[str, str]], dict[str, tuple[str, float]]]:
    """Per language 60 in-scope rows answered right and 40 out-of-scope rows, on scales no single threshold
    separates: English right 0.7-1.0 and off-topic 0.4-0.65, Chinese right 0.35-0.6 and off-topic 0.1-0.3."""
    rng, holdout, answers = random.Random(3), [], {}
    for text, right, off in (
        ("question {}", (0.7, 1.0), (0.4, 0.65)),
        ("问题 {}", (0.35, 0.6), (0.1, 0.3)),
    ):
        for i in range(100):
            gold = "oos" if i >= 60 else f"p{i % 10}"
            answers[text.format(i)] = ("p0" if gold == "oos" else gold, rng.uniform(*(off if gold == "oos" else right)))
            holdout.append((text.format(i), gold))
    return holdout, answers


def test_each_language_with_enough_held_out_rows_gets_its_own_operating_point_and_the_gate_uses_it():
    # given: two languages whose scores sit on different scales
    holdout, answers = _two_language_holdout()
    gold, scored = [label for _, label in holdout], score_rows(_Scripted(answers), holdout)
    # when
    rule = calibrate(_Scripted(answers), holdout)
    # then: a rule per language, which keeps the right answers and catches the off-topic questions in both
    assert rule is not None and set(rule.languages) == {"en", "zh"}
    decided = metrics(gold, decisions_at(scored, rule))
    assert decided["accuracy"] >= 0.95 and decided["oos_recall"] >= 0.95, (rule, decided)
    one_rule = metrics(gold, decisions_at(scored, rule.at(rule.threshold, rule.margin)))
    assert one_rule["accuracy"] + one_rule["oos_recall"] < 1.8, (rule, one_rule)
    # the gate judges each model at its own per-language points (cross-fitted), and the model in service by the
    # per-language rules it serves with
    candidate, active = _Scripted(answers), _Scripted(answers)
    active.rejection = Rejection(0.0, 0.0, languages={"en": (0.68, 0.0), "zh": (0.32, 0.0)})
    result = gate_compare(candidate, active, holdout, margin=0.0)
    assert result["passed"] and result["candidate"]["accuracy"] >= 0.95 and result["candidate"]["oos_recall"] >= 0.9
    assert result["active_in_service"]["accuracy"] == 1.0 and result["active_in_service"]["oos_recall"] == 1.0


def test_an_operators_threshold_replaces_the_per_language_rules_in_service(active):
    # given: the version in service with a rule of its own for Chinese
    active.language_rules = {"zh": {"threshold": 0.9, "margin": 0.1}}
    active.save(update_fields=["language_rules"])
    loaded = engine_get()
    assert loaded.model.rejection.languages == {"zh": (0.9, 0.1)}
    assert model_version_load(active).rejection.languages == {"zh": (0.9, 0.1)}  # as the gate judges it
    # when: an operator sets the threshold
    model_version_set_threshold(active, threshold=0.3)
    # then: one threshold for every language, applied without a reload
    again = engine_get()
    assert again is loaded and again.model.rejection.languages == {} and again.model.threshold == 0.3
    assert ModelVersion.objects.get(pk=active.pk).language_rules == {}
