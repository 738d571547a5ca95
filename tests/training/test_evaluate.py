import json
from pathlib import Path

from training import evaluate

DATA = Path(__file__).parent / "data"


def test_it_prints_one_json_object(capsys) -> None:
    evaluate.main(
        [
            "--train",
            str(DATA / "tiny_train.csv"),
            "--test",
            str(DATA / "tiny_test.csv"),
            "--json",
            "--encoder",
            "ngram",
            "--epochs",
            "5",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    keys = {
        "accuracy",
        "macro_f1",
        "closed_set_accuracy",
        "in_scope_accuracy",
        "oos_precision",
        "oos_recall",
        "train_seconds",
        "latency_ms_p50",
    }
    assert keys <= set(result)
    assert 0.0 <= result["accuracy"] <= 1.0 and result["latency_ms_p50"] > 0


def test_it_recalibrates_a_saved_model_on_new_data(tmp_path, capsys) -> None:
    common = ["--test", str(DATA / "tiny_test.csv"), "--json", "--threads", "1"]
    evaluate.main(
        ["--train", str(DATA / "tiny_train.csv"), "--encoder", "ngram", "--epochs", "5"]
        + common
        + ["--save", str(tmp_path / "m")]
    )
    capsys.readouterr()
    evaluate.main(
        ["--train", str(DATA / "tiny_train.csv"), "--model", str(tmp_path / "m"), "--val", str(DATA / "tiny_test.csv")]
        + ["--component", "ngram", "--set", "oos_prior=0.3", "--set", "target_oos_precision=0.5"]
        + common
    )
    result = json.loads(capsys.readouterr().out)
    assert result["info"]["components"] == ["ngram"] and 0.0 <= result["threshold"] <= 1.0
