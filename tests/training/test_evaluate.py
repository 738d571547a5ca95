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
