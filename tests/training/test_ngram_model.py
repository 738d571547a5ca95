import json
import math
from pathlib import Path

import pytest
import torch

from training import AnswerModel, ModelConfig
from training.calibration import Calibration, CalibrationError
from training.data import Example
from training.rejection import Rejection
from training.text import language


def test_it_answers_english_and_chinese(ngram_model: AnswerModel, tiny_test: list[Example]) -> None:
    in_scope = [(t, label) for t, label in tiny_test if label != "oos"]
    ranked = ngram_model.predict([t for t, _ in in_scope], k=3)
    hits = sum(r[0][0] == label for r, (_, label) in zip(ranked, in_scope, strict=True))
    assert hits >= len(in_scope) - 2


def test_it_returns_sorted_scores_in_unit_range(ngram_model: AnswerModel) -> None:
    [ranked] = ngram_model.predict(["where is my refund"], k=3)
    scores = [s for _, s in ranked]
    assert len(ranked) == 3 and scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_it_never_makes_oos_a_class(ngram_model: AnswerModel) -> None:
    assert "oos" not in ngram_model.labels and len(ngram_model.labels) == 5


def test_it_calibrates_rejection(ngram_model: AnswerModel) -> None:
    assert 0.0 <= ngram_model.threshold <= 1.0 and 0.0 <= ngram_model.margin <= 1.0
    assert ngram_model.decide([]) is False
    assert ngram_model.decide([("refund", 1.0), ("invoice", 0.0)]) is True


def test_it_round_trips_through_save_and_load(ngram_model: AnswerModel, tmp_path: Path) -> None:
    texts = ["how do i reset my password", "发票怎么开", "unknown words zzz"]
    ngram_model.save(tmp_path / "m")
    loaded = AnswerModel.load(tmp_path / "m")
    assert loaded.labels == ngram_model.labels
    assert (loaded.threshold, loaded.margin) == (ngram_model.threshold, ngram_model.margin)
    assert loaded.predict(texts) == ngram_model.predict(texts)
    assert loaded.info == ngram_model.info


def test_it_saves_its_calibration_as_one_record_and_refuses_a_damaged_one(
    ngram_model: AnswerModel, tmp_path: Path
) -> None:
    # given: a saved model
    ngram_model.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert Calibration.from_dict(document["calibration"], ["ngram"]) == ngram_model.calibration
    assert not {"threshold", "margin", "temperatures"} & set(document["meta"])
    damages = [
        ("temperature", -1.0, "temperature must be positive"),
        ("threshold", "high", "threshold must be a finite number"),
        ("weights", {"en": {"ngram": 1.0}}, r"weights.zh must give a number for each of \['ngram'\]"),
        ("margin", None, "margin must be a finite number"),
    ]
    for key, value, message in damages:
        # when: one value of its calibration is damaged
        damaged = {**document, "calibration": {**document["calibration"], key: value}}
        path.write_text(json.dumps(damaged), encoding="utf-8")
        # then: loading it says which value and in which file
        with pytest.raises(CalibrationError, match=message) as error:
            AnswerModel.load(tmp_path / "m")
        assert str(path) in str(error.value)
    del document["calibration"]["background"]
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CalibrationError, match="calibration lacks background"):
        AnswerModel.load(tmp_path / "m")


def test_it_loads_a_model_saved_with_its_calibration_inside_meta(ngram_model: AnswerModel, tmp_path: Path) -> None:
    # given: a model folder as saved before the calibration had a record of its own (the values inside meta)
    ngram_model.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["meta"].update(document.pop("calibration"))
    path.write_text(json.dumps(document), encoding="utf-8")
    # when
    loaded = AnswerModel.load(tmp_path / "m")
    # then: it answers and decides as the model that was saved
    texts = ["how do i reset my password", "发票怎么开", "unknown words zzz"]
    assert loaded.calibration == ngram_model.calibration and loaded.info == ngram_model.info
    assert loaded.predict(texts) == ngram_model.predict(texts)
    assert loaded.meta == ngram_model.meta


def test_it_is_deterministic_with_a_seed(tiny_train: list[Example]) -> None:
    config = ModelConfig(encoder="ngram", seed=3, epochs=5)
    a, b = AnswerModel.fit(tiny_train, config), AnswerModel.fit(tiny_train, config)
    texts = ["refund please", "快递到哪了"]
    assert a.predict(texts) == b.predict(texts)
    assert torch.equal(a.embed(texts), b.embed(texts))


def test_it_embeds_unit_vectors(ngram_model: AnswerModel) -> None:
    vectors = ngram_model.embed(["track my parcel", "怎么查物流", ""])
    assert vectors.shape[0] == 3
    assert torch.allclose(vectors[:2].norm(dim=1), torch.ones(2), atol=1e-5)


def test_it_reports_each_epoch_and_summarises(tiny_train: list[Example], tiny_test: list[Example]) -> None:
    seen: list[dict] = []
    model = AnswerModel.fit(
        tiny_train, ModelConfig(encoder="ngram", epochs=3, patience=10), val_examples=tiny_test, on_epoch=seen.append
    )
    assert [s["epoch"] for s in seen] == [1, 2, 3]
    assert set(seen[0]) >= {"epoch", "epochs", "train_loss", "val_loss", "val_accuracy"}
    assert math.isfinite(seen[-1]["train_loss"])
    info = model.info
    assert info["encoder"] == "ngram" and info["n_labels"] == 5 and info["n_examples"] == len(tiny_train)
    assert {"threshold", "margin", "train_seconds", "val_accuracy"} <= set(info)


def test_it_falls_back_to_ngram_when_no_pretrained_weights_exist(tiny_train: list[Example]) -> None:
    config = ModelConfig(encoder="fusion", transformer_path="/nonexistent", use_e5=False, epochs=3)
    model = AnswerModel.fit(tiny_train, config)
    assert model.info["components"] == ["ngram"]
    assert model.predict(["refund please"], k=1)[0][0][0] == "refund"


def test_it_keeps_only_named_components(tiny_train: list[Example]) -> None:
    import pytest

    model = AnswerModel.fit(tiny_train, ModelConfig(encoder="ngram", epochs=3))
    with pytest.raises(ValueError):
        model.keep(["transformer"])
    assert model.keep(["ngram"]).calibration.weights["en"] == {"ngram": 1.0}


def test_it_fits_and_keeps_a_background_logit_with_enough_oos_rows(
    tiny_train: list[Example], tiny_test: list[Example], tmp_path: Path
) -> None:
    oos = [(f"qwxz {i} zzyq blorp", "oos") for i in range(12)]
    model = AnswerModel.fit(tiny_train, ModelConfig(encoder="ngram", epochs=5), val_examples=tiny_test + oos)
    background = model.rejection.background
    assert background is None or isinstance(background, float)
    assert model.info["background"] == background
    scores = model.scores(["refund please", "qwxz 99 zzyq"])
    assert bool((scores.sum(-1) <= 1 + 1e-5).all())
    model.save(tmp_path / "m")
    loaded = AnswerModel.load(tmp_path / "m")
    assert loaded.calibration == model.calibration
    assert torch.allclose(loaded.scores(["refund please"]), model.scores(["refund please"]))
    off = AnswerModel.fit(
        tiny_train, ModelConfig(encoder="ngram", epochs=5, reject_unfamiliar=False), val_examples=tiny_test + oos
    )
    assert off.rejection.background is None


def test_ngram_dropout_drops_ngrams_in_training_batches_only() -> None:
    from training.ngram import NgramClassifier, NgramEncoder

    texts = ["can i return this for a refund", "ok"]
    classifier = NgramClassifier(NgramEncoder.from_texts(texts, 8, 2**20), 2, dropout=0.0, ngram_dropout=0.5)
    items = classifier.featurize(texts)
    torch.manual_seed(0)
    ids, offsets = classifier.train().collate(items)
    sizes = torch.diff(torch.cat([offsets, torch.tensor([len(ids)])]))
    assert 0 < sizes[0] < len(items[0]) and sizes[1] >= 1  # about half dropped; no question left empty
    ids, _ = classifier.eval().collate(items)
    assert torch.equal(ids, torch.cat(items))  # answering sees every n-gram


def test_a_calibration_saved_before_per_language_rules_loads_as_it_was() -> None:
    # given: a record in the format saved before per-language rules existed (no "languages")
    old = {
        "temperatures": {"ngram": 1.5},
        "weights": {"en": {"ngram": 1.0}, "zh": {"ngram": 1.0}},
        "temperature": 0.8,
        "threshold": 0.42,
        "margin": 0.05,
        "background": None,
    }
    # when
    calibration = Calibration.from_dict(old, ["ngram"])
    # then: the one rule serves every language, and it is written back with an empty per-language part
    assert calibration.rejection == Rejection(0.42, 0.05, None) and calibration.rejection.languages == {}
    assert calibration.rejection.point("zh") == (0.42, 0.05)
    assert calibration.to_dict() == {**old, "languages": {}}
    with pytest.raises(CalibrationError, match="languages must be an object"):
        Calibration.from_dict({**old, "languages": {"fr": {"threshold": 0.5, "margin": 0.0}}}, ["ngram"])
    with pytest.raises(CalibrationError, match="languages.zh.margin must be a finite number"):
        Calibration.from_dict({**old, "languages": {"zh": {"threshold": 0.5, "margin": "x"}}}, ["ngram"])


def test_it_chooses_a_rule_for_a_language_only_where_its_held_out_rows_allow_and_decides_by_it(
    tiny_train: list[Example], tiny_test: list[Example], tmp_path: Path
) -> None:
    # given: held-out rows with 30 English questions and 20 English off-topic ones, and a few Chinese rows
    english = [(f"hi, {text}", label) for text, label in tiny_train if label != "oos" and language(text) == "en"]
    off_topic = [(f"tell me about the planet number {i} and its moons", "oos") for i in range(20)]
    chinese = [(text, label) for text, label in tiny_test if language(text) == "zh"]
    assert len(english) == 30 and len(chinese) == 6
    # when
    model = AnswerModel.fit(
        tiny_train, ModelConfig(encoder="ngram", epochs=5), val_examples=english + off_topic + chinese
    )
    # then: English has a rule of its own, Chinese uses the global one; both saved with the model
    assert list(model.rejection.languages) == ["en"]
    assert model.rejection.point("zh") == (model.threshold, model.margin)
    model.save(tmp_path / "m")
    assert AnswerModel.load(tmp_path / "m").rejection == model.rejection
    threshold, margin = model.rejection.point("en")
    assert model.info["languages"] == {"en": {"threshold": threshold, "margin": margin}}
    # the model decides a message by its language's rule
    model.rejection = model.rejection.at(0.5, 0.0, {"zh": (0.9, 0.0)})
    ranked = [("refund", 0.7), ("invoice", 0.1)]
    assert model.decide(ranked, "en") and model.decide(ranked) and not model.decide(ranked, "zh")
    # an operating point set without languages (as an operator's threshold) is one rule for every language
    model.threshold = 0.6
    assert model.rejection.languages == {} and model.decide(ranked, "zh")
